#pragma once
// The statuses a RES or an ERR carries (docs/protocol.md §9), by name.

namespace Middleman::Status {

inline constexpr int Ok = 200;
inline constexpr int Malformed = 400;      // §9, "400: malformed"
inline constexpr int NotAllowed = 403;     // "403: not allowed": no grant, wrong role
inline constexpr int UnknownRequest = 404; // a RES for no pending request of its sender
inline constexpr int TooLarge = 413;
inline constexpr int LimitReached = 429;   // a per-connection limit or the message rate
inline constexpr int Unavailable = 503;    // no responder, responder gone, shutting down
inline constexpr int TimedOut = 504;

} // namespace Middleman::Status
