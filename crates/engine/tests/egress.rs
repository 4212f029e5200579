//! The egress guard: the policy's reading of addresses, and the proxy that holds it on
//! every hop (redirects included), with real aria2c.

use std::net::{IpAddr, Ipv4Addr};

use mltb_engine::ErrorKind;
use mltb_engine::egress::{AddressClass, EgressPolicy, forbidden};
use proptest::prelude::*;

/// One number written in base 8, 10 or 16, with leading zeros where the base allows.
fn number(value: u32, base: u8, zeros: usize, upper: bool) -> String {
    match base {
        8 => format!("0{}{value:o}", "0".repeat(zeros)),
        16 if upper => format!("0X{}{value:X}", "0".repeat(zeros)),
        16 => format!("0x{}{value:x}", "0".repeat(zeros)),
        _ => value.to_string(),
    }
}

/// `ip` in the textual forms libc accepts: 1 to 4 parts, each in any base, or IPv6 forms
/// that embed it.
fn text_form(
    ip: Ipv4Addr,
    form: u8,
    bases: [u8; 4],
    zeros: usize,
    upper: bool,
    trailing_dot: bool,
) -> String {
    let [a, b, c, d] = ip.octets().map(u32::from);
    let n = |v, i: usize| number(v, bases[i], zeros, upper);
    let bits = u32::from(ip);
    let host = match form % 8 {
        0 => n(bits, 0),
        1 => format!("{}.{}", n(a, 0), n(bits & 0xff_ffff, 1)),
        2 => format!("{}.{}.{}", n(a, 0), n(b, 1), n(bits & 0xffff, 2)),
        3 => format!("{}.{}.{}.{}", n(a, 0), n(b, 1), n(c, 2), n(d, 3)),
        4 => format!("[::ffff:{ip}]"),
        5 => format!("[::ffff:{:x}:{:x}]", bits >> 16, bits & 0xffff),
        6 => format!("[64:ff9b::{ip}]"),
        _ => format!("[2002:{:x}:{:x}::1]", bits >> 16, bits & 0xffff),
    };
    if trailing_dot && !host.starts_with('[') { format!("{host}.") } else { host }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn check_ip_never_panics(bits in any::<u128>(), v4 in any::<u32>()) {
        let policy = EgressPolicy::default();
        let _ = policy.check_ip(IpAddr::from(std::net::Ipv6Addr::from(bits)));
        let _ = policy.check_ip(IpAddr::from(Ipv4Addr::from(v4)));
    }

    #[test]
    fn loopback_in_any_textual_form_is_refused(
        low in 0u32..(1 << 24),
        form in any::<u8>(),
        bases in proptest::array::uniform4(prop::sample::select(vec![8u8, 10, 16])),
        zeros in 0usize..3,
        upper in any::<bool>(),
        trailing_dot in any::<bool>(),
        port in proptest::option::of(1u16..),
    ) {
        let ip = Ipv4Addr::from((127 << 24) | low);
        let host = text_form(ip, form, bases, zeros, upper, trailing_dot);
        let url = match port {
            Some(p) => format!("http://{host}:{p}/x"),
            None => format!("http://{host}/x"),
        };
        // No allowlist, and no name lookup: a form read as a name would not be refused.
        let err = EgressPolicy::default().check_url_syntax(&url).expect_err(&url);
        match err.kind() {
            ErrorKind::Refused { reason, .. } => prop_assert!(reason.contains("loopback"), "{url}: {reason}"),
            other => prop_assert!(false, "{url}: {other:?}"),
        }
        prop_assert_eq!(forbidden(IpAddr::V4(ip)).map(|f| f.class), Some(AddressClass::Loopback));
    }
}
