#pragma once
// Reading what the broker sends, as a peer does: each protocol message of a frame
// in order, and every part the codec refuses (which the broker must never send).

#include "codec.h"

namespace Middleman::Testing {

// Calls onMessage(const Message &) for each message and onError(const ParseError &)
// for each refused part. onMessage returns false to stop reading the frame.
template <typename OnMessage, typename OnError>
void readBrokerFrame(const QByteArray &data, bool binary, OnMessage &&onMessage, OnError &&onError)
{
    CodecLimits limits;
    limits.maxMessageSize = 64 * 1024 * 1024; // the broker's output is not limited by a peer's settings
    FrameReader reader(data, limits, binary, Direction::FromBroker);
    Message message;
    ParseError error;
    for (;;) {
        switch (reader.next(message, error)) {
        case FrameReader::Item::End:
            return;
        case FrameReader::Item::Message:
            if (!onMessage(message))
                return;
            break;
        case FrameReader::Item::Error:
            onError(error);
            break;
        }
    }
}

// Every message of one frame the broker sent; parts the codec refuses are left out
// (a caller that must see none checks with readBrokerFrame()).
inline QList<Message> brokerMessages(const QByteArray &data, bool binary)
{
    QList<Message> messages;
    readBrokerFrame(
        data, binary,
        [&messages](const Message &message) {
            messages.append(message);
            return true;
        },
        [](const ParseError &) {});
    return messages;
}

} // namespace Middleman::Testing
