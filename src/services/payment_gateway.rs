//! The simulated payment gateway both payment loops ask (events and commands): accept,
//! decline, decline a share of transactions or one customer's.

/// The simulated payment gateway.
#[derive(Debug, Clone, PartialEq)]
pub enum Gateway {
    /// Accepts every payment (`--pg-ok true`).
    Accept,
    /// Declines every payment (`--pg-ok false`).
    Decline,
    /// Declines this fraction of transactions (`--decline-rate 0.3`), chosen by a hash of
    /// the transaction id, so the same transaction always gets the same answer.
    DeclineRate(f64),
    /// Declines the payments of one customer (`edm lab` shows a rollback this way).
    DeclineUser(String),
}

impl Gateway {
    /// Whether the gateway accepts the payment of saga `transaction_id` by `user_id`.
    pub fn accepts(&self, transaction_id: &str, user_id: &str) -> bool {
        match self {
            Gateway::Accept => true,
            Gateway::Decline => false,
            Gateway::DeclineRate(rate) => unit_hash(transaction_id) >= *rate,
            Gateway::DeclineUser(declined) => user_id != declined,
        }
    }
}

/// A stable hash of `text` mapped to [0, 1) (64-bit FNV-1a).
fn unit_hash(text: &str) -> f64 {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decline_rate_is_stable_and_about_right() {
        let gateway = Gateway::DeclineRate(0.3);
        let ids: Vec<String> = (0..10_000).map(|i| format!("tx-{i}")).collect();
        let declined = ids.iter().filter(|id| !gateway.accepts(id, "u")).count();
        assert!(
            (2_700..3_300).contains(&declined),
            "{declined} of 10000 declined"
        );
        for id in &ids[..100] {
            assert_eq!(gateway.accepts(id, "u"), gateway.accepts(id, "v"));
        }
        assert!(ids.iter().all(|id| Gateway::Accept.accepts(id, "u")));
        assert!(ids.iter().all(|id| !Gateway::Decline.accepts(id, "u")));
        assert!(
            ids.iter()
                .all(|id| Gateway::DeclineRate(0.0).accepts(id, "u"))
        );
        assert!(
            ids.iter()
                .all(|id| !Gateway::DeclineRate(1.0).accepts(id, "u"))
        );
        let bob = Gateway::DeclineUser("bob".into());
        assert!(bob.accepts("t", "alice") && !bob.accepts("t", "bob"));
    }
}
