# Reads a middleman-bench report (Markdown) of a run with the churn scenario
# and checks, from counts alone, no timing, every broker's column: both
# cases, R=0 (no churner) and one with churn, delivered messages; the
# churner sent no SUB+UNSUB pair in R=0 and some in the other (a run fails
# if the broker refused one or had not taken them all by its end), whose
# delivered msg/s is also given against R=0; and both cases had their
# latency taken at one common rate. Exits 1 with a message otherwise.
#
#   awk -f report.awk -f check_churn.awk smoke.md

/^## / { inChurn = 0; next }
/^### / { inChurn = ($0 == "### churn"); next }

inChurn && /^\| params \| metric \|/ {
    brokers = brokerColumns()
    next
}

inChurn && /^\| [A-Za-z]/ {
    params = $2
    gsub(/^ +| +$/, "", params)
    what = params ~ / R=0 / ? "R=0" : "churned"
    if (what == "churned")
        churned = params
    metric = $3
    sub(/ \(lower is better\) $/, "", metric)
    gsub(/^ +| +$/, "", metric)
    if (match(metric, /^p(50|99) µs at common rate, [0-9,.]+ msg\/s published$/)) {
        rate = metric
        sub(/^p(50|99) µs at common rate, /, "", rate)
        if (commonRate != "" && rate != commonRate)
            fail(params ": common rate " rate ", another case's is " commonRate)
        commonRate = rate
        ++atCommonRate[what]
        metric = "at common rate"
    }
    for (i = 4; i < 4 + brokers; i++) {
        if (!isNumber(number($i))) {
            fail(params ", " metric ": no figure in column " i - 3 ":" $i)
            continue
        }
        if (metric == "at common rate")
            continue
        ++count[what, metric]
        if (number($i) + 0 > 0)
            ++above[what, metric]
    }
}

# Every broker's figure of `metric` in case `what`: above 0 or all 0.
function expect(what, metric, positive) {
    if (count[what, metric] != brokers)
        fail(what ": " count[what, metric] + 0 " figures of " metric ", expected " brokers)
    else if (positive && above[what, metric] != brokers)
        fail(what ": " metric " not above 0 for every broker")
    else if (!positive && above[what, metric] > 0)
        fail(what ": " metric " above 0")
}

END {
    if (!brokers)
        fail("no churn table")
    if (churned == "")
        fail("no case with churn")
    expect("R=0", "delivered msg/s", 1)
    expect("churned", "delivered msg/s", 1)
    expect("R=0", "SUB+UNSUB pairs/s", 0)
    expect("churned", "SUB+UNSUB pairs/s", 1)
    expect("churned", "delivered msg/s against R=0", 1)
    if (atCommonRate["R=0"] != 2 || atCommonRate["churned"] != 2)
        fail("not a p50 and a p99 row at the common rate in each case")
    exit failed
}
