//! The forwarding kill switch: the SSM parameter `FORWARDING_SWITCH_PARAMETER`
//! (`/eventfabric/<env>/forwarding/enabled`) holds `on` or `off`. Off, every request gets 503
//! `forwarding_disabled` with `Retry-After` before anything else is read, so clients keep
//! their events and send them again later; nothing reaches the buses.
//!
//! The parameter is read at most once per [`SWITCH_TTL`] per execution environment, so a flip
//! (by hand, or by the forward-failure-rate alarm: README, "Forwarding kill switch") takes
//! effect within that time without a deploy. An unreadable parameter or an unknown value keeps
//! the value in force; before any read succeeds forwarding is on: a Parameter Store outage must
//! not switch the platform off.

use std::time::Duration;

use eventfabric_core::parameter::{CachedParameter, ParameterSource};

/// How long a read value is held.
pub const SWITCH_TTL: Duration = Duration::from_secs(10);

/// How long a refused client is told to wait before sending again.
pub const RETRY_AFTER_SECONDS: i64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarding {
    On,
    Off,
}

impl Forwarding {
    /// `on` or `off` (any case, surrounding blanks ignored).
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "on" => Ok(Self::On),
            "off" => Ok(Self::Off),
            _ => Err(format!(
                "the forwarding switch is '{}': it must be 'on' or 'off'",
                crate::request::bounded(text.to_owned())
            )),
        }
    }
}

/// The switch as the function holds it.
pub type Switch<S> = CachedParameter<S, Forwarding>;

/// The switch on `source`, read every [`SWITCH_TTL`], on until a read succeeds.
pub fn switch<S: ParameterSource>(source: S) -> Switch<S> {
    CachedParameter::new(source, SWITCH_TTL, Forwarding::parse, Forwarding::On)
}

#[cfg(test)]
mod tests {
    use super::*;
    use eventfabric_core::parameter::MemoryParameter;

    #[test]
    fn on_and_off_are_the_only_values() {
        assert_eq!(Forwarding::parse("on"), Ok(Forwarding::On));
        assert_eq!(Forwarding::parse(" OFF\n"), Ok(Forwarding::Off));
        let error = Forwarding::parse("disabled").unwrap_err();
        assert!(
            error.contains("'disabled'") && error.contains("'on' or 'off'"),
            "{error}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_flip_takes_effect_within_the_ttl_and_an_outage_keeps_forwarding_on() {
        let source = MemoryParameter::new("on");
        source.set(Err("AccessDenied".into()));
        let switch = switch(source);
        assert_eq!(
            switch.current().await,
            Forwarding::On,
            "unreadable at start: on"
        );
        switch.source().set(Ok("off".into()));
        tokio::time::advance(SWITCH_TTL).await;
        assert_eq!(switch.current().await, Forwarding::Off);
        switch.source().set(Ok("on".into()));
        tokio::time::advance(SWITCH_TTL).await;
        assert_eq!(switch.current().await, Forwarding::On, "back on by hand");
    }
}
