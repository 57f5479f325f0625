#include "connection.h"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/field.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>

namespace bench {

namespace asio = boost::asio;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;

Connection::Connection(asio::io_context& io, const Endpoint& endpoint, Handlers handlers, int index)
    : m_ws(io), m_endpoint(endpoint), m_handlers(std::move(handlers)), m_index(index)
{
    m_ws.auto_fragment(false);  // one WebSocket message, one frame
    m_ws.read_message_max(64u << 20);
    m_ws.binary(endpoint.binary);
    if (!endpoint.subprotocol.empty()) {
        m_ws.set_option(websocket::stream_base::decorator(
            [protocol = endpoint.subprotocol](websocket::request_type& request) {
                request.set(boost::beast::http::field::sec_websocket_protocol, protocol);
            }));
    }
}

Connection::~Connection() = default;

void Connection::start(const asio::ip::address& source)
{
    auto& socket = m_ws.next_layer();
    boost::system::error_code error;
    socket.open(source.is_v6() ? tcp::v6() : tcp::v4(), error);
    if (!error) {
        // Pick the port at connect time, per destination, so one source address
        // serves as many connections as the port range allows.
        const int on = 1;
        ::setsockopt(socket.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof on);
        socket.bind(tcp::endpoint(source, 0), error);
    }
    if (error)
        return fail("bind", error);
    const tcp::endpoint target(asio::ip::make_address(m_endpoint.host), m_endpoint.port);
    socket.async_connect(target, [self = shared_from_this()](const boost::system::error_code& error) {
        if (error)
            return self->fail("connect", error);
        self->m_ws.next_layer().set_option(tcp::no_delay(true));
        const std::string host = self->m_endpoint.host + ':' + std::to_string(self->m_endpoint.port);
        self->m_ws.async_handshake(host, self->m_endpoint.path, [self](const boost::system::error_code& error) {
            if (error)
                return self->fail("upgrade", error);
            self->m_open = true;
            self->readNext();
            if (self->m_handlers.opened)
                self->m_handlers.opened(*self);
            self->flush();
        });
    });
}

void Connection::readNext()
{
    m_ws.async_read(m_readBuffer, [self = shared_from_this()](const boost::system::error_code& error, std::size_t) {
        if (error)
            return self->fail("read", error);
        const auto data = self->m_readBuffer.cdata();
        const std::string_view frame(static_cast<const char*>(data.data()), data.size());
        self->m_bytesIn += frame.size();
        if (self->m_handlers.frame)
            self->m_handlers.frame(*self, frame);
        self->m_readBuffer.consume(self->m_readBuffer.size());
        if (!self->m_dead)
            self->readNext();
    });
}

void Connection::flush()
{
    if (!m_open || m_writing || m_closing || m_pending.empty())
        return;
    writeNext();
}

void Connection::writeNext()
{
    m_inFlight.clear();
    m_inFlight.swap(m_pending);
    m_writing = true;
    m_ws.async_write(asio::buffer(m_inFlight), [self = shared_from_this()](const boost::system::error_code& error, std::size_t) {
        self->m_writing = false;
        if (error)
            return self->fail("write", error);
        // Large frames once sent would pin their capacity on an idle connection.
        if (self->m_inFlight.capacity() > (256u << 10))
            std::string().swap(self->m_inFlight);
        self->flush();
        if (self->m_handlers.written)
            self->m_handlers.written(*self);
    });
}

void Connection::close()
{
    if (m_dead)
        return;
    if (!m_open || m_closing) {
        boost::system::error_code ignored;
        m_ws.next_layer().close(ignored);
        return;
    }
    m_closing = true;
    m_ws.async_close(websocket::close_code::normal, [self = shared_from_this()](const boost::system::error_code&) {
        boost::system::error_code ignored;
        self->m_ws.next_layer().close(ignored);
    });
}

void Connection::fail(std::string_view where, const boost::system::error_code& error)
{
    if (m_dead)
        return;
    m_dead = true;
    const bool wasOpen = m_open;
    m_open = false;
    boost::system::error_code ignored;
    m_ws.next_layer().close(ignored);
    // A close we asked for is not a failure; one the broker sent is.
    if (m_closing)
        return;
    if (m_handlers.failed) {
        std::string why(where);
        why += ": ";
        why += error.message();
        if (wasOpen && error == websocket::error::closed) {
            why += " (close " + std::to_string(m_ws.reason().code) + ' ' + std::string(m_ws.reason().reason) + ')';
        }
        m_handlers.failed(*this, why);
    }
}

} // namespace bench
