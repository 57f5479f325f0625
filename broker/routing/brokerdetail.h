#pragma once
// What the files of Broker share and nobody else needs (routing/broker.cpp,
// admission.cpp, dispatch.cpp, requests.cpp, snapshots.cpp).

#include "role.h"
#include "session.h"

#include <QString>

namespace Middleman::BrokerDetail {

inline QString roleName(Role role)
{
    switch (role) {
    case Role::Service: return QStringLiteral("service");
    case Role::Client: return QStringLiteral("client");
    case Role::None: break;
    }
    return QStringLiteral("unauthenticated");
}

inline QString describe(const Session *session)
{
    return QStringLiteral("%1:%2").arg(session->peerAddress().toString()).arg(session->peerPort());
}

} // namespace Middleman::BrokerDetail
