#pragma once

// What the NATS and MQTT streaming parsers share: the bytes received and not yet
// consumed, and the error that stops a parser. Standard library only.

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

namespace bench {

class StreamBuffer {
public:
    bool failed() const { return !error_.empty(); }
    const std::string& error() const { return error_; }
    // Bytes received but not yet consumed.
    std::size_t buffered() const { return buf_.size() - pos_; }

protected:
    // Appends `bytes`, first dropping the consumed prefix when it is at least as
    // long as what is kept, so each byte is moved O(1) times on average; views
    // handed out so far die here. Returns how many bytes were dropped from the
    // front (positions the parser keeps move back by as much).
    std::size_t append(std::string_view bytes)
    {
        std::size_t dropped = 0;
        if (pos_ == buf_.size()) {
            dropped = pos_;
            buf_.clear();
            pos_ = 0;
        } else if (pos_ > 0 && pos_ >= buf_.size() - pos_) {
            dropped = pos_;
            buf_.erase(0, pos_);
            pos_ = 0;
        }
        buf_.append(bytes);
        return dropped;
    }
    // Forgets every buffered byte and the error.
    void clear()
    {
        buf_.clear();
        pos_ = 0;
        error_.clear();
    }
    bool fail(std::string message)
    {
        error_ = std::move(message);
        return false;
    }

    std::string buf_;
    std::size_t pos_ = 0; // start of the first unconsumed message
    std::string error_;
};

} // namespace bench
