# Reads a middleman-bench report (Markdown) and checks that every fanout and
# topics case with at least two brokers' maxima has its p50 and p99 rows at the
# common rate, a value for every broker in them, and the rate they state is
# half the lowest maximum publish rate of the case: delivered msg/s over the
# deliveries per message (N for fanout, 1 for topics). The table rounds to 3
# significant digits, so 1.5 % is allowed. Exits 1 with a message otherwise.
#
#   awk -f report.awk -f check_common_rate.awk smoke.md

# "fanout N=10 256 B": the scenario and the params cell of this row.
function caseOf(params) {
    gsub(/^ +| +$/, "", params)
    return scenario " " params
}

/^### / { scenario = substr($0, 5); next }

# | params | metric | broker ... | ratio ... |: the brokers are the columns without a slash.
/^\| params \| metric \|/ {
    brokers = brokerColumns()
    next
}

scenario != "fanout" && scenario != "topics" { next }

/^\| / && $3 == " delivered msg/s " {
    lowest = -1
    measured = 0
    for (i = 4; i < 4 + brokers; i++) {
        value = number($i)
        if (!isNumber(value))
            continue
        ++measured
        if (lowest < 0 || value + 0 < lowest)
            lowest = value + 0
    }
    perMessage = 1
    if (scenario == "fanout" && match($2, /N=[0-9]+/))
        perMessage = substr($2, RSTART + 2, RLENGTH - 2) + 0
    key = caseOf($2)
    ++cases
    if (measured >= 2) {
        expected[key] = lowest / perMessage / 2
        if (expected[key] < 1)
            expected[key] = 1
    }
    next
}

/^\| / && $3 ~ /^ p(50|99) µs at common rate, / {
    key = caseOf($2)
    ++rows[key]
    if (!(key in expected)) {
        fail(key ": a row at a common rate without two maxima to take it from")
        next
    }
    if (!match($3, /, [0-9,.]+ msg\/s published/)) {
        fail(key ": no rate in \"" $3 "\"")
        next
    }
    stated = number(substr($3, RSTART + 2, RLENGTH - 2 - length(" msg/s published"))) + 0
    difference = stated - expected[key]
    if (difference < 0)
        difference = -difference
    if (difference > 0.015 * expected[key])
        fail(key ": common rate " stated " msg/s, expected " expected[key])
    for (i = 4; i < 4 + brokers; i++)
        if (!isNumber(number($i)))
            fail(key ", " substr($3, 2, index($3, ",") - 2) ": no value for broker " i - 3)
}

END {
    if (cases == 0)
        fail("no fanout or topics case")
    for (key in expected)
        if (rows[key] != 2)
            fail(key ": " rows[key] + 0 " rows at the common rate, expected 2 (p50 and p99)")
    exit failed
}
