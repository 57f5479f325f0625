#pragma once
// PatternTree: patterns indexed by token, like NATS's sublist. Plain data, no thread affinity.
//
// Each pattern (docs/protocol.md §3.2: '*' one token, '>' the rest) holds a set
// of values of type T (connection ids, for instance). match() walks only the
// branches a literal target can reach, so the cost follows the target's depth and
// the number of matching patterns, not the number of stored patterns.
//
// Rules for callers: insert() and remove() take valid patterns (Target::isPattern),
// match() takes a valid literal target (Target::isLiteral). The same value under two
// matching patterns is reported twice; deduplicate if it matters.

#include <QByteArrayView>
#include <QList>

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace Middleman {

template<typename T>
class PatternTree
{
public:
    // Returns false if the value was already stored under this pattern.
    bool insert(QByteArrayView pattern, const T &value)
    {
        Node *node = &m_root;
        forEachToken(pattern, [&node](QByteArrayView token) {
            std::unique_ptr<Node> *slot = nullptr;
            if (token == "*") {
                slot = &node->star;
            } else if (token == ">") {
                slot = &node->rest;
            } else {
                auto it = node->children.find(std::string_view(token.data(), token.size()));
                if (it == node->children.end())
                    it = node->children.emplace(std::string(token.data(), token.size()), nullptr).first;
                slot = &it->second;
            }
            if (!*slot)
                *slot = std::make_unique<Node>();
            node = slot->get();
        });
        if (node->values.contains(value))
            return false;
        node->values.append(value);
        ++m_size;
        return true;
    }

    // Returns false if the value was not stored under this pattern. Prunes empty branches.
    bool remove(QByteArrayView pattern, const T &value)
    {
        const bool removed = removeIn(m_root, pattern, value);
        if (removed)
            --m_size;
        return removed;
    }

    bool contains(QByteArrayView pattern, const T &value) const
    {
        const Node *node = &m_root;
        forEachToken(pattern, [&node](QByteArrayView token) {
            if (node)
                node = childFor(*node, token);
        });
        return node && node->values.contains(value);
    }

    // Calls f(const T &) for every value stored under a pattern matching `literal`.
    template<typename F>
    void match(QByteArrayView literal, F &&f) const
    {
        matchIn(m_root, literal, 0, f);
    }

    // Number of (pattern, value) pairs stored.
    qsizetype size() const { return m_size; }
    bool isEmpty() const { return m_size == 0; }

private:
    struct StringHash
    {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    struct Node
    {
        std::unordered_map<std::string, std::unique_ptr<Node>, StringHash, std::equal_to<>> children;
        std::unique_ptr<Node> star; // '*'
        std::unique_ptr<Node> rest; // '>'
        QList<T> values;
        bool isEmpty() const { return children.empty() && !star && !rest && values.isEmpty(); }
    };

    template<typename F>
    static void forEachToken(QByteArrayView text, F &&f)
    {
        qsizetype pos = 0;
        while (pos <= text.size()) {
            qsizetype dot = text.indexOf('.', pos);
            if (dot < 0)
                dot = text.size();
            f(text.sliced(pos, dot - pos));
            pos = dot + 1;
        }
    }

    static const Node *childFor(const Node &node, QByteArrayView token)
    {
        if (token == "*")
            return node.star.get();
        if (token == ">")
            return node.rest.get();
        auto it = node.children.find(std::string_view(token.data(), token.size()));
        return it == node.children.end() ? nullptr : it->second.get();
    }

    template<typename F>
    static void matchIn(const Node &node, QByteArrayView literal, qsizetype pos, F &f)
    {
        if (pos > literal.size()) { // every token consumed
            for (const T &v : node.values)
                f(v);
            return;
        }
        if (node.rest) { // '>' takes this token and all that follow
            for (const T &v : node.rest->values)
                f(v);
        }
        qsizetype dot = literal.indexOf('.', pos);
        if (dot < 0)
            dot = literal.size();
        const QByteArrayView token = literal.sliced(pos, dot - pos);
        if (node.star)
            matchIn(*node.star, literal, dot + 1, f);
        if (!node.children.empty()) {
            auto it = node.children.find(std::string_view(token.data(), token.size()));
            if (it != node.children.end())
                matchIn(*it->second, literal, dot + 1, f);
        }
    }

    // Recursive so that emptied nodes can be pruned on the way back.
    static bool removeIn(Node &node, QByteArrayView rest, const T &value)
    {
        if (rest.data() == nullptr) { // past the last token
            return node.values.removeOne(value);
        }
        qsizetype dot = rest.indexOf('.');
        const QByteArrayView token = dot < 0 ? rest : rest.first(dot);
        const QByteArrayView tail = dot < 0 ? QByteArrayView() : rest.sliced(dot + 1);
        std::unique_ptr<Node> *slot = nullptr;
        typename decltype(node.children)::iterator it;
        if (token == "*") {
            slot = &node.star;
        } else if (token == ">") {
            slot = &node.rest;
        } else {
            it = node.children.find(std::string_view(token.data(), token.size()));
            if (it == node.children.end())
                return false;
            slot = &it->second;
        }
        if (!*slot)
            return false;
        const bool removed = removeIn(**slot, tail, value);
        if (removed && (*slot)->isEmpty()) {
            if (token == "*" || token == ">")
                slot->reset();
            else
                node.children.erase(it);
        }
        return removed;
    }

    Node m_root;
    qsizetype m_size = 0;
};

} // namespace Middleman
