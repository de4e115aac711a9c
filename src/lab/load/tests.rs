use super::*;
use indicatif::ProgressDrawTarget;

#[test]
fn a_bar_ends_on_what_it_counted() {
    let progress = MultiProgress::with_draw_target(ProgressDrawTarget::hidden());
    let cancelled = bar(&progress, 2000, "cancelled");
    cancelled.inc(426);
    end_bar(&cancelled, 2000);
    assert_eq!(
        (cancelled.position(), cancelled.length()),
        (426, Some(2000))
    );
    let placed = bar(&progress, 20_000, "placed");
    placed.inc(600);
    end_bar(&placed, 20_000);
    assert_eq!((placed.position(), placed.length()), (600, Some(20_000)));
}
