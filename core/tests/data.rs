//! The runner's data order: every epoch a permutation, a new one per epoch, the same for a
//! resumed run.

use ssm_core::data::EpochOrder;

#[test]
fn each_epoch_is_a_fresh_permutation_and_a_resumed_stream_continues_it() {
    let n = 10;
    let mut o = EpochOrder::new(n, 3);
    let stream: Vec<usize> = (0..3 * n).map(|g| o.item(g)).collect();
    for e in 0..3 {
        let mut epoch = stream[e * n..(e + 1) * n].to_vec();
        assert_eq!(epoch, EpochOrder::permutation(n, 3, e), "epoch {e}");
        epoch.sort();
        assert_eq!(epoch, (0..n).collect::<Vec<_>>(), "epoch {e} is not a permutation");
    }
    assert_ne!(stream[..n], stream[n..2 * n], "two epochs in the same order");
    assert_ne!(EpochOrder::permutation(n, 3, 0), EpochOrder::permutation(n, 4, 0), "the seed is ignored");
    // batches of 4 straddle the epoch boundary; a fresh order (a resumed run) at step 4 gives
    // the same batch as the one that walked steps 0..4
    let walked: Vec<Vec<usize>> = (0..6).map(|s| o.batch(s, 4)).collect();
    assert_eq!(walked.concat(), stream[..24]);
    assert_eq!(EpochOrder::new(n, 3).batch(4, 4), walked[4]);
}
