# Reads a middleman-bench report (Markdown) and checks its CPU table: every
# fanout, topics and churn row, whose latencies come from paced publishing,
# gives how late the load generator sent (p50 and p99, a number each, p50 not
# above p99); every reqres, connections and flood row a dash (nothing paced,
# or, in the flood, a flooder the broker may hold back by design and a
# bystander whose lateness is in its latencies).
# The bench polling cores, the load generator's polling before paced messages
# fell due, are a number no larger than the bench cores in every row whose CPU
# window was paced (the common-rate rows, and the flood's, whose bystander is
# paced), and a dash in every other row.
# Exits 1 with a message otherwise.
#
#   awk -f report.awk -f check_sent_late.awk smoke.md

/^## / { inCpu = ($0 == "## CPU use"); next }

inCpu && /^\| scenario \|/ {
    for (i = 2; i < NF; i++) {
        name = $i
        gsub(/^ +| +$/, "", name)
        if (name == "sent late p50 µs") p50 = i
        if (name == "sent late p99 µs") p99 = i
        if (name == "bench cores") bench = i
        if (name == "bench polling cores") polling = i
    }
    if (!bench || !polling)
        fail("no bench polling column in the CPU table")
    if (!p50 || !p99)
        fail("no sent-late columns in the CPU table")
    next
}

inCpu && /^\| [a-z]/ && p50 {
    scenario = $2
    gsub(/ /, "", scenario)
    what = scenario $3 $4
    ++rows
    if (scenario == "fanout" || scenario == "topics" || scenario == "churn") {
        ++paced
        if (!isNumber(number($p50)) || !isNumber(number($p99)))
            fail(what ": no sent-late figures")
        else if (number($p50) + 0 > number($p99) + 0)
            fail(what ": sent-late p50 above p99")
    } else if ($p50 != " — " || $p99 != " — ") {
        fail(what ": sent-late figures where nothing was paced")
    }
    if ($3 ~ / at common rate (\(run [0-9]+ of [0-9]+\) )?$/ || scenario == "flood") {
        ++pacedWindows
        if (!isNumber(number($polling)))
            fail(what ": no bench polling figure")
        else if (number($polling) + 0 > number($bench) + 0)
            fail(what ": bench polling above bench cores")
    } else if ($polling != " — ") {
        fail(what ": a bench polling figure where the CPU window was not paced")
    }
}

END {
    if (!rows || !paced || !pacedWindows)
        fail("no CPU rows of paced scenarios")
    exit failed
}
