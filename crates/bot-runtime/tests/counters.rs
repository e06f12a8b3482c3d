use bot_runtime::Counters;

#[test]
fn counters_count_known_names_and_render_as_prometheus_counters() {
    let c = Counters::new("bot", &[("done", "Work done."), ("failed", "Failures.")]);
    c.inc("done");
    c.inc("done");
    c.inc("unknown");
    assert_eq!(
        (c.get("done"), c.get("failed"), c.get("unknown")),
        (2, 0, 0)
    );
    assert_eq!(
        c.render(),
        "# HELP bot_done_total Work done.\n# TYPE bot_done_total counter\nbot_done_total 2\n\
         # HELP bot_failed_total Failures.\n# TYPE bot_failed_total counter\nbot_failed_total 0\n"
    );
}
