// One WebSocket client connection of the load generator: Boost.Beast on a plain
// TCP socket, driven by the single io_context of the run (no locks, no threads).
//
// Writes are coalesced: whatever is appended while a write is in flight goes out
// as the next WebSocket message, so a fast sender produces few, large frames, as
// real client libraries do. Every protocol involved allows several of its
// messages in one WebSocket message.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace bench {

struct Endpoint {
    std::string host = "127.0.0.1";
    uint16_t port = 0;
    std::string path = "/";
    std::string subprotocol;  // Sec-WebSocket-Protocol; empty for none
    bool binary = false;      // frame type of what we send
};

class Connection : public std::enable_shared_from_this<Connection> {
public:
    struct Handlers {
        std::function<void(Connection&)> opened;                       // upgrade done
        std::function<void(Connection&, std::string_view)> frame;      // one WebSocket message
        std::function<void(Connection&, std::string_view why)> failed; // any error; the connection is dead
        std::function<void(Connection&)> written;                      // a write completed
    };

    Connection(boost::asio::io_context& io, const Endpoint& endpoint, Handlers handlers, int index);
    ~Connection();

    // Connects from the given local address (any 127.0.0.0/8 address on loopback,
    // so more than one address's worth of ephemeral ports can be used).
    void start(const boost::asio::ip::address& source);

    std::string& out() { return m_pending; }  // append protocol bytes, then flush()
    void flush();
    // Bytes appended but not yet handed to the socket: a sender holds back
    // while this is large, as a client library's bounded send buffer would.
    size_t unsent() const { return m_pending.size(); }
    void close();  // a WebSocket close handshake, then the socket goes

    int index() const { return m_index; }
    bool isOpen() const { return m_open; }
    uint64_t bytesReceived() const { return m_bytesIn; }

    // Per-connection state a protocol adapter keeps (its stream parser).
    struct State {
        virtual ~State() = default;
    };
    std::unique_ptr<State> state;

private:
    void fail(std::string_view where, const boost::system::error_code& error);
    void readNext();
    void writeNext();

    // The io_context's own executor type rather than the type-erased default:
    // no executor copies on every operation.
    using Socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, boost::asio::io_context::executor_type>;
    boost::beast::websocket::stream<Socket> m_ws;
    Endpoint m_endpoint;
    Handlers m_handlers;
    int m_index;
    boost::beast::flat_buffer m_readBuffer;
    std::string m_pending;
    std::string m_inFlight;
    bool m_writing = false;
    bool m_open = false;
    bool m_closing = false;
    bool m_dead = false;
    uint64_t m_bytesIn = 0;
};

} // namespace bench
