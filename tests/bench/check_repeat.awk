# Reads a middleman-bench report (Markdown) of a run with --repeat R and
# checks that every broker's figure is a median with its range, "median
# (lowest–highest)", lowest <= median <= highest, and that the CPU table has
# runs 1 to R of every broker for every case and round, once each. Exits 1
# with a message otherwise.
#
#   awk -v repeat=2 -f report.awk -f check_repeat.awk smoke.md

/^## / { inCpu = ($0 == "## CPU use"); inTable = 0; next }
/^### / { inTable = 0; next }

/^\| params \| metric \|/ {
    brokers = brokerColumns()
    inTable = 1
    next
}

inTable && /^\| [^-]/ {
    for (i = 4; i < 4 + brokers; i++) {
        ++figures
        if (!match($i, /^ [0-9.,]+ \([0-9.,]+–[0-9.,]+\) $/)) {
            fail($2 $3 ": not a median with its range:" $i)
            continue
        }
        text = $i
        median = number(substr(text, 1, index(text, "(") - 1)) + 0
        range = substr(text, index(text, "(") + 1)
        sub(/\) $/, "", range)
        split(range, bounds, "–")
        if (number(bounds[1]) + 0 > median || median > number(bounds[2]) + 0)
            fail($2 $3 ": median outside its range:" $i)
    }
}

inCpu && /^\| [a-z]/ && $2 != " scenario " {
    label = $3
    if (!match(label, /\(run [0-9]+ of [0-9]+\) $/)) {
        fail("CPU row without its run: " $0)
        next
    }
    run = substr(label, RSTART)
    base = substr(label, 1, RSTART - 1)
    split(run, words, " ")
    if (words[4] + 0 != repeat)
        fail("CPU row of another count of runs: " $0)
    key = $2 "|" base "|" $4
    seen[key] = seen[key] " " (words[2] + 0)
    ++count[key]
}

END {
    if (!figures)
        fail("no figures")
    n = 0
    for (key in count) {
        ++n
        if (count[key] != repeat)
            fail(key ": " count[key] " runs in the CPU table, not " repeat)
        for (r = 1; r <= repeat; r++)
            if (index(seen[key] " ", " " r " ") == 0)
                fail(key ": no run " r)
    }
    if (!n)
        fail("no CPU rows")
    exit failed
}
