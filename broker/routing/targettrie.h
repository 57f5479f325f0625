#pragma once
// TargetTrie: literal targets by token, so that a pattern finds the ones it
// matches by walking only the branches it can reach ('*' every child of one
// level, '>' every target below). SubscriptionTable keeps its cached targets
// here: a SUB or UNSUB then costs what its pattern matches, not a pass over
// every cached target. Plain data, no thread affinity.
//
// Rules for callers: insert() takes a valid literal target, takeMatching() a
// valid pattern (Target::isLiteral, Target::isPattern).

#include <QByteArray>
#include <QByteArrayView>

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace Middleman {

class TargetTrie
{
public:
    void insert(QByteArrayView literal)
    {
        Node *node = &m_root;
        qsizetype pos = 0;
        for (;;) {
            const qsizetype dot = literal.indexOf('.', pos);
            const qsizetype end = dot < 0 ? literal.size() : dot;
            std::unique_ptr<Node> &child = node->children[std::string(literal.data() + pos, size_t(end - pos))];
            if (!child)
                child = std::make_unique<Node>();
            node = child.get();
            if (dot < 0)
                break;
            pos = dot + 1;
        }
        node->stored = true;
    }

    // Removes every stored target `pattern` matches and calls f(const QByteArray &)
    // with each.
    template<typename F>
    void takeMatching(QByteArrayView pattern, F &&f)
    {
        QByteArray path;
        takeIn(m_root, pattern, path, f);
    }

    void clear() { m_root.children.clear(); }

private:
    struct StringHash
    {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    struct Node
    {
        std::unordered_map<std::string, std::unique_ptr<Node>, StringHash, std::equal_to<>> children;
        bool stored = false;
        bool isEmpty() const { return children.empty() && !stored; }
    };

    // `rest`: what is left of the pattern below `node`; `path`: the target up to `node`.
    template<typename F>
    static void takeIn(Node &node, QByteArrayView rest, QByteArray &path, F &f)
    {
        const qsizetype dot = rest.indexOf('.');
        const QByteArrayView token = dot < 0 ? rest : rest.first(dot);
        const QByteArrayView below = dot < 0 ? QByteArrayView() : rest.sliced(dot + 1);
        const auto visit = [&](auto it) {
            const qsizetype mark = path.size();
            if (mark > 0)
                path.append('.');
            path.append(it->first.data(), qsizetype(it->first.size()));
            Node &child = *it->second;
            if (token == ">")
                takeAll(child, path, f);
            else if (dot < 0)
                takeHere(child, path, f);
            else
                takeIn(child, below, path, f);
            path.truncate(mark);
            return child.isEmpty();
        };
        if (token == "*" || token == ">") {
            for (auto it = node.children.begin(); it != node.children.end();)
                it = visit(it) ? node.children.erase(it) : std::next(it);
            return;
        }
        const auto it = node.children.find(std::string_view(token.data(), size_t(token.size())));
        if (it != node.children.end() && visit(it))
            node.children.erase(it);
    }

    template<typename F>
    static void takeHere(Node &node, const QByteArray &path, F &f)
    {
        if (node.stored) {
            node.stored = false;
            f(path);
        }
    }

    // Every target at `node` and below it.
    template<typename F>
    static void takeAll(Node &node, QByteArray &path, F &f)
    {
        takeHere(node, path, f);
        for (auto &[token, child] : node.children) {
            const qsizetype mark = path.size();
            path.append('.');
            path.append(token.data(), qsizetype(token.size()));
            takeAll(*child, path, f);
            path.truncate(mark);
        }
        node.children.clear();
    }

    Node m_root;
};

} // namespace Middleman
