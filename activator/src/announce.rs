//! Announcements: a pod's shim tells the activator (`POST /v1/announce` on the admin
//! listener) the moment its HTTP guest serves, before kubelet has written the pod IP into
//! the pod's status (it does at its next relist, up to a second later). The shim runs in
//! the pod's network namespace, so the connection's source address is the pod IP; the
//! body only says which pod it claims to be and proves it is one of the app's with the
//! token the operator gave it (the WasmApp's uid). Checking is a pure function; the app
//! state records the address ([`crate::app::AppState::announce`]) and the proxy probes it.

use std::net::IpAddr;

use serde::Deserialize;

use crate::index::{AppInfo, PodInfo};
use crate::metrics::AnnounceOutcome;

/// The path announcements are POSTed to.
pub const ANNOUNCE_PATH: &str = "/v1/announce";
/// Largest body read; an announcement is about 200 bytes.
pub const MAX_BODY: usize = 4096;

/// What a pod's shim sends: `{"namespace", "pod", "uid", "port", "token"}`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Announcement {
    pub namespace: String,
    pub pod: String,
    /// The pod's uid: a pod of the same name from before is not this one.
    pub uid: String,
    /// The port the guest serves on.
    pub port: u16,
    /// The WasmApp's uid, from the pod's `spore.dev/announce-token` annotation.
    pub token: String,
}

/// Why an announcement was refused; each is one answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not an announcement, or a port the app does not serve on (400).
    Invalid(String),
    /// No such pod with that uid (404).
    UnknownPod { namespace: String, pod: String, uid: String },
    /// The token is not the pod's app's uid, or the app is unknown (403).
    BadToken,
    /// The pod is being deleted or has finished (409).
    Terminating,
    /// The pod already has another address (409).
    Conflict { known: IpAddr, peer: IpAddr },
    /// A relayed announcement from a connection that is not another activator replica (403).
    NotAPeer(IpAddr),
}

impl Refusal {
    pub fn status(&self) -> u16 {
        match self {
            Self::Invalid(_) => 400,
            Self::UnknownPod { .. } => 404,
            Self::BadToken | Self::NotAPeer(_) => 403,
            Self::Terminating | Self::Conflict { .. } => 409,
        }
    }

    pub fn outcome(&self) -> AnnounceOutcome {
        match self {
            Self::Invalid(_) => AnnounceOutcome::Invalid,
            Self::UnknownPod { .. } => AnnounceOutcome::UnknownPod,
            Self::BadToken | Self::NotAPeer(_) => AnnounceOutcome::BadToken,
            Self::Terminating | Self::Conflict { .. } => AnnounceOutcome::Conflict,
        }
    }

    /// The one-line text/plain body.
    pub fn message(&self) -> String {
        match self {
            Self::Invalid(why) => format!("invalid announcement: {why}\n"),
            Self::UnknownPod { namespace, pod, uid } => format!("unknown pod {namespace}/{pod} (uid {uid})\n"),
            Self::BadToken => "bad token: it is not the uid of the pod's WasmApp\n".into(),
            Self::Terminating => "conflict: the pod is terminating\n".into(),
            Self::NotAPeer(peer) => {
                format!("forbidden: only another activator replica relays announcements, and {peer} is not one\n")
            }
            Self::Conflict { known, peer } => {
                format!("conflict: the pod's address is {known}, the announcement came from {peer}\n")
            }
        }
    }
}

/// Parses a body; anything but the five fields' JSON is [`Refusal::Invalid`].
pub fn parse(body: &[u8]) -> Result<Announcement, Refusal> {
    serde_json::from_slice(body).map_err(|e| Refusal::Invalid(e.to_string()))
}

/// What the index knows of the announced pod and its app.
#[derive(Clone, Copy, Debug, Default)]
pub struct Known<'a> {
    /// The pod of that namespace and name, if any.
    pub pod: Option<&'a PodInfo>,
    /// Its address so far: the status IP, or one announced before.
    pub address: Option<IpAddr>,
    /// Its app's WasmApp.
    pub app: Option<&'a AppInfo>,
    /// The target ports of the app's Service.
    pub target_ports: &'a [u16],
}

/// Whether `announcement`, arriving from `peer`, may make `peer` the pod's address; `Ok`
/// with the address (IPv4 for an IPv4-mapped peer). The checks go from who to what: the
/// pod, the token, the pod's state, the port, the address.
pub fn check(announcement: &Announcement, peer: IpAddr, known: &Known) -> Result<IpAddr, Refusal> {
    let pod = known.pod.filter(|p| p.uid == announcement.uid).ok_or_else(|| Refusal::UnknownPod {
        namespace: announcement.namespace.clone(),
        pod: announcement.pod.clone(),
        uid: announcement.uid.clone(),
    })?;
    // An app whose uid the index does not know yet accepts no token, not even an empty one.
    if !known.app.is_some_and(|app| !app.uid.is_empty() && app.uid == announcement.token) {
        return Err(Refusal::BadToken);
    }
    if pod.terminating {
        return Err(Refusal::Terminating);
    }
    if !known.target_ports.contains(&announcement.port) {
        let ports: Vec<String> = known.target_ports.iter().map(u16::to_string).collect();
        let expected = match ports.as_slice() {
            [] => "the app has no Service yet".to_string(),
            _ => format!("the app's target port is {}", ports.join(" or ")),
        };
        return Err(Refusal::Invalid(format!("port {}: {expected}", announcement.port)));
    }
    let peer = peer.to_canonical();
    match known.address {
        Some(known) if known != peer => Err(Refusal::Conflict { known, peer }),
        _ => Ok(peer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{app, pod};

    fn announcement() -> Announcement {
        Announcement {
            namespace: "apps".into(),
            pod: "hello-1".into(),
            uid: "uid-hello-1".into(),
            port: 8080,
            token: "app-uid".into(),
        }
    }

    #[test]
    fn bodies_parse_into_announcements() {
        let body = br#"{"namespace": "apps", "pod": "hello-1", "uid": "uid-hello-1", "port": 8080, "token": "app-uid", "later": 1}"#;
        assert_eq!(parse(body), Ok(announcement()), "unknown fields are ignored");
        for bad in [
            &b""[..],
            b"{",
            b"[]",
            br#"{"namespace": "apps"}"#,
            br#"{"namespace": "apps", "pod": "p", "uid": "u", "port": 70000, "token": "t"}"#,
        ] {
            let refusal = parse(bad).unwrap_err();
            assert_eq!((refusal.status(), refusal.outcome()), (400, AnnounceOutcome::Invalid), "{bad:?}");
            let message = refusal.message();
            assert!(message.starts_with("invalid announcement: ") && message.lines().count() == 1, "{message}");
        }
    }

    #[test]
    fn an_announcement_is_checked_from_who_to_what() {
        let mut owner = app("apps", "hello");
        owner.uid = "app-uid".into();
        let mut uidless = owner.clone();
        uidless.uid = String::new();
        let mut unseen = pod("apps", "hello", "hello-1", "10.0.0.1", false);
        unseen.ip = None;
        let mut terminating = unseen.clone();
        terminating.terminating = true;
        let mut stale = unseen.clone();
        stale.uid = "uid-older".into();
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let with_token = |token: &str| Announcement { token: token.into(), ..announcement() };
        let known = |pod, address, app| Known { pod, address, app, target_ports: &[8080] };
        let unknown =
            Err(Refusal::UnknownPod { namespace: "apps".into(), pod: "hello-1".into(), uid: "uid-hello-1".into() });
        type Case<'a> = (&'a str, Announcement, IpAddr, Known<'a>, Result<IpAddr, Refusal>);
        let cases: Vec<Case> = vec![
            ("accepted", announcement(), loopback, known(Some(&unseen), None, Some(&owner)), Ok(loopback)),
            (
                "an IPv4-mapped peer is the IPv4 address",
                announcement(),
                ip("::ffff:10.0.0.9"),
                known(Some(&unseen), None, Some(&owner)),
                Ok(ip("10.0.0.9")),
            ),
            (
                "the status IP agrees",
                announcement(),
                ip("10.0.0.1"),
                known(Some(&unseen), Some(ip("10.0.0.1")), Some(&owner)),
                Ok(ip("10.0.0.1")),
            ),
            ("no such pod", announcement(), loopback, known(None, None, Some(&owner)), unknown.clone()),
            ("another pod of that name", announcement(), loopback, known(Some(&stale), None, Some(&owner)), unknown),
            (
                "wrong token",
                with_token("other"),
                loopback,
                known(Some(&unseen), None, Some(&owner)),
                Err(Refusal::BadToken),
            ),
            ("no WasmApp", announcement(), loopback, known(Some(&unseen), None, None), Err(Refusal::BadToken)),
            (
                "app uid unknown",
                with_token(""),
                loopback,
                known(Some(&unseen), None, Some(&uidless)),
                Err(Refusal::BadToken),
            ),
            (
                "terminating",
                announcement(),
                loopback,
                known(Some(&terminating), None, Some(&owner)),
                Err(Refusal::Terminating),
            ),
            (
                "another port",
                Announcement { port: 9000, ..announcement() },
                loopback,
                known(Some(&unseen), None, Some(&owner)),
                Err(Refusal::Invalid("port 9000: the app's target port is 8080".into())),
            ),
            (
                "no Service",
                announcement(),
                loopback,
                Known { target_ports: &[], ..known(Some(&unseen), None, Some(&owner)) },
                Err(Refusal::Invalid("port 8080: the app has no Service yet".into())),
            ),
            (
                "one of several target ports",
                announcement(),
                loopback,
                Known { target_ports: &[9000, 8080], ..known(Some(&unseen), None, Some(&owner)) },
                Ok(loopback),
            ),
            (
                "the pod has another address",
                announcement(),
                loopback,
                known(Some(&unseen), Some(ip("10.0.0.1")), Some(&owner)),
                Err(Refusal::Conflict { known: ip("10.0.0.1"), peer: loopback }),
            ),
        ];
        for (what, announcement, peer, known, want) in cases {
            assert_eq!(check(&announcement, peer, &known), want, "{what}");
        }
    }

    #[test]
    fn each_refusal_has_its_status_outcome_and_one_line() {
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        for (refusal, status, outcome, starts) in [
            (Refusal::Invalid("port 1".into()), 400, AnnounceOutcome::Invalid, "invalid announcement: port 1"),
            (
                Refusal::UnknownPod { namespace: "a".into(), pod: "p".into(), uid: "u".into() },
                404,
                AnnounceOutcome::UnknownPod,
                "unknown pod a/p (uid u)",
            ),
            (Refusal::BadToken, 403, AnnounceOutcome::BadToken, "bad token"),
            (Refusal::NotAPeer(peer), 403, AnnounceOutcome::BadToken, "forbidden: only another activator replica"),
            (Refusal::Terminating, 409, AnnounceOutcome::Conflict, "conflict: the pod is terminating"),
            (Refusal::Conflict { known: peer, peer }, 409, AnnounceOutcome::Conflict, "conflict: the pod's address is"),
        ] {
            assert_eq!((refusal.status(), refusal.outcome()), (status, outcome), "{refusal:?}");
            let message = refusal.message();
            assert!(
                message.starts_with(starts) && message.ends_with('\n') && message.lines().count() == 1,
                "{message}"
            );
        }
    }
}
