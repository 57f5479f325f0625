# Reads a middleman-bench report (Markdown) and checks that it says what the
# brokers ran on, in its title and in a note, and nothing else: with
# limits=defaults, their shipped defaults; with limits=open, their limits
# opened up (--open-limits), and, when the run had the flood scenario, that
# the flood ran on middleman's shipped client limits all the same. Exits 1
# with a message otherwise.
#
#   awk -v limits=open -f report.awk -f check_limits.awk smoke.md

NR == 1 { title = $0 }
/^- every broker ran on its shipped defaults/ { ++defaultsNotes }
/^- limits opened up \(--open-limits\)/ { ++openNotes }
/^### flood$/ { flood = 1 }
/^- flood: .*on the shipped client limits despite --open-limits/ { ++floodShipped }

END {
    if (limits == "defaults") {
        if (title != "# middleman-bench results, shipped defaults")
            fail("title not naming the shipped defaults: " title)
        if (defaultsNotes != 1 || openNotes || floodShipped)
            fail("notes: " defaultsNotes + 0 " on the shipped defaults, " openNotes + floodShipped " on --open-limits")
    } else if (limits == "open") {
        if (title != "# middleman-bench results, limits opened up: --open-limits")
            fail("title not naming --open-limits: " title)
        if (openNotes != 1 || defaultsNotes)
            fail("notes: " openNotes + 0 " on --open-limits, " defaultsNotes + 0 " on the shipped defaults")
        if (flood && floodShipped != 1)
            fail("no note that the flood ran on the shipped client limits")
    } else {
        fail("limits must be defaults or open, not \"" limits "\"")
    }
    exit failed
}
