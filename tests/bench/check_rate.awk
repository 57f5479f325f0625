# Reads a middleman-bench report (Markdown) of a run with --rate and checks
# that every fanout and topics case has exactly its two latency rows at that
# rate, each with a number for every broker, and no maximum (no delivered
# msg/s row). Exits 1 with a message otherwise.
#
#   awk -v rate=400 -f report.awk -f check_rate.awk smoke.md

/^## / { scenario = ""; next }
/^### / { scenario = substr($0, 5); next }

/^\| params \| metric \|/ {
    brokers = brokerColumns()
    next
}

scenario != "fanout" && scenario != "topics" { next }

/^\| [^-]/ {
    ++rows
    what = scenario $2
    expected50 = " p50 µs at common rate, " rate " msg/s published (lower is better) "
    expected99 = " p99 µs at common rate, " rate " msg/s published (lower is better) "
    if ($3 == expected50)
        ++p50[what]
    else if ($3 == expected99)
        ++p99[what]
    else
        fail(what ": a row other than the latencies at " rate " msg/s:" $3)
    for (i = 4; i < 4 + brokers; i++)
        if (number($i) !~ /^[0-9]+(\.[0-9]+)?$/)
            fail(what ":" $3 ": no figure in column " i - 3)
}

END {
    if (!rows)
        fail("no fanout or topics rows")
    for (what in p50)
        if (p50[what] != 1 || p99[what] != 1)
            fail(what ": not one p50 and one p99 row")
    for (what in p99)
        if (!(what in p50))
            fail(what ": a p99 row without its p50 row")
    exit failed
}
