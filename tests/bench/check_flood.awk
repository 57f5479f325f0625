# Reads a middleman-bench report (Markdown) of a run with the flood scenario
# and checks what each case says of the flood, from counts alone, no timing:
# none had no flood; in pace (middleman's default) the flooder got no ERR 429,
# and in refuse it got some; in both, messages were delivered, every message
# sent was delivered or refused (none lost) and none came out of order; the
# bystander did round trips in every case. The table has middleman's column
# alone (the other brokers do not run it). Exits 1 with a message otherwise.
#
#   awk -f report.awk -f check_flood.awk smoke.md

/^## / { inFlood = 0; next }
/^### / { inFlood = ($0 == "### flood"); next }

inFlood && /^\| params \| metric \|/ {
    if (brokerColumns() != 1 || $4 != " middleman ")
        fail("flood table with columns other than middleman's: " $0)
    next
}

inFlood && /^\| [a-z]/ {
    params = $2
    gsub(/^ +| +$/, "", params)
    metric = $3
    sub(/ \(lower is better\) $/, "", metric)
    gsub(/^ +| +$/, "", metric)
    if (!isNumber(number($4))) {
        fail(params ", " metric ": no figure:" $4)
        next
    }
    figure[params, metric] = number($4) + 0
}

function expect(params, metric, comparison, bound,   value) {
    if (!((params, metric) in figure)) {
        fail(params ": no " metric)
        return
    }
    value = figure[params, metric]
    if (comparison == "==" && value != bound || comparison == ">" && value <= bound)
        fail(params ": " metric " " value ", expected " comparison " " bound)
}

END {
    expect("none", "flood sent/s", "==", 0)
    expect("pace", "ERR 429/s", "==", 0)
    expect("refuse", "ERR 429/s", ">", 0)
    for (i = split("pace refuse", flooded, " "); i > 0; i--) {
        expect(flooded[i], "flood sent/s", ">", 0)
        expect(flooded[i], "flood delivered/s", ">", 0)
        expect(flooded[i], "flood lost", "==", 0)
        expect(flooded[i], "flood out of order", "==", 0)
    }
    for (i = split("none pace refuse", cases, " "); i > 0; i--)
        expect(cases[i], "bystander round trips/s", ">", 0)
    exit failed
}
