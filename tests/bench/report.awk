# What the checks of a middleman-bench report share; loaded before each:
#   awk -f report.awk -f check_....awk report.md
# Fields are the cells of a Markdown table row (FS = "|").

BEGIN { FS = "|" }

# The message on stderr, and a failing exit once the check ends.
function fail(message) {
    print FILENAME ": " message > "/dev/stderr"
    failed = 1
}
# A cell's number without the thousands commas, spaces and footnote marks.
function number(text) {
    gsub(/\[\^[0-9]+\]|[ ,]/, "", text)
    return text
}
function isNumber(text) {
    return text ~ /^[0-9]+(\.[0-9]+)?$/
}
# In a figure table's header, | params | metric | broker ... | ratio ... |:
# how many brokers, the columns without a slash.
function brokerColumns(   i, count) {
    count = 0
    for (i = 4; i < NF; i++)
        if ($i !~ /\//)
            ++count
    return count
}
