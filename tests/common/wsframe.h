#pragma once
// The client side of RFC 6455 5.2 framing, for the hand-written test peers.

#include <QByteArray>
#include <QByteArrayView>
#include <QtEndian>

#include <optional>

namespace Middleman::Testing {

// The header of a client frame announcing `length` payload bytes, with its
// masking key `mask`, and none of the payload (RFC 6455 5.2).
inline QByteArray maskedHeader(quint8 opcode, quint64 length, quint32 mask, bool fin = true)
{
    QByteArray header;
    header.reserve(14);
    header.append(char((fin ? 0x80 : 0x00) | (opcode & 0x0F)));
    if (length < 126) {
        header.append(char(0x80 | length));
    } else if (length <= 0xFFFF) {
        header.append(char(0x80 | 126));
        header.append(char(length >> 8));
        header.append(char(length & 0xFF));
    } else {
        header.append(char(0x80 | 127));
        for (int shift = 56; shift >= 0; shift -= 8)
            header.append(char((length >> shift) & 0xFF));
    }
    char maskBytes[4];
    qToBigEndian(mask, maskBytes);
    header.append(maskBytes, 4);
    return header;
}

// One frame from client to server, masked with `mask` as RFC 6455 5.3 requires.
inline QByteArray maskedFrame(quint8 opcode, QByteArrayView payload, quint32 mask, bool fin = true)
{
    QByteArray frame = maskedHeader(opcode, quint64(payload.size()), mask, fin);
    const qsizetype at = frame.size();
    frame.append(payload.data(), payload.size());
    char maskBytes[4];
    qToBigEndian(mask, maskBytes);
    char *bytes = frame.data() + at;
    for (qsizetype i = 0; i < payload.size(); ++i)
        bytes[i] = char(bytes[i] ^ maskBytes[i & 3]);
    return frame;
}

// The header of a frame at the start of `in` (RFC 6455 5.2).
struct FrameHead
{
    quint8 opcode = 0;
    bool fin = false;
    bool masked = false;
    qsizetype size = 0;  // header bytes, the masking key included
    quint64 length = 0;  // payload bytes
};

// Reads the header at the start of `in`; nothing while it is not all there.
inline std::optional<FrameHead> frameHead(QByteArrayView in)
{
    if (in.size() < 2)
        return std::nullopt;
    FrameHead head;
    head.opcode = quint8(in.at(0)) & 0x0F;
    head.fin = quint8(in.at(0)) & 0x80;
    head.masked = quint8(in.at(1)) & 0x80;
    head.size = 2;
    head.length = quint8(in.at(1)) & 0x7F;
    if (head.length == 126) {
        head.size = 4;
        if (in.size() < head.size)
            return std::nullopt;
        head.length = qFromBigEndian<quint16>(in.data() + 2);
    } else if (head.length == 127) {
        head.size = 10;
        if (in.size() < head.size)
            return std::nullopt;
        head.length = qFromBigEndian<quint64>(in.data() + 2);
    }
    if (head.masked)
        head.size += 4;
    return head;
}

} // namespace Middleman::Testing
