//! Which IP addresses the egress guard refuses, and how numeric host names read.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address may not be fetched from: the class of address it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AddressClass {
    /// `0.0.0.0/8` ("this network") or `::`.
    Unspecified,
    /// `127.0.0.0/8` or `::1`.
    Loopback,
    /// `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`, IPv6 site-local `fec0::/10`, or
    /// the local-use NAT64 prefix `64:ff9b:1::/48`.
    Private,
    /// `169.254.0.0/16` or `fe80::/10`.
    LinkLocal,
    /// Carrier-grade NAT, `100.64.0.0/10`.
    SharedCgnat,
    /// `224.0.0.0/4` or `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// A cloud provider's instance metadata service: `169.254.169.254`,
    /// `fd00:ec2::254` (AWS), `100.100.100.200` (Alibaba).
    CloudMetadata,
    /// IPv6 unique-local, `fc00::/7`.
    UniqueLocal,
    /// Documentation ranges: `192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24`,
    /// `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// Benchmarking, `198.18.0.0/15`.
    Benchmarking,
    /// Reserved or special-purpose: `240.0.0.0/4`, `192.0.0.0/24`, `192.88.99.0/24`,
    /// the IPv6 discard prefix `100::/64`.
    Reserved,
}

impl AddressClass {
    /// The class in words, with its article: "a loopback address".
    pub fn describe(self) -> &'static str {
        match self {
            AddressClass::Unspecified => "an unspecified (\"this network\") address",
            AddressClass::Loopback => "a loopback address",
            AddressClass::Private => "a private address",
            AddressClass::LinkLocal => "a link-local address",
            AddressClass::SharedCgnat => "a carrier-grade NAT address",
            AddressClass::Multicast => "a multicast address",
            AddressClass::Broadcast => "the broadcast address",
            AddressClass::CloudMetadata => "a cloud metadata address",
            AddressClass::UniqueLocal => "a unique-local address",
            AddressClass::Documentation => "a documentation address",
            AddressClass::Benchmarking => "a benchmarking address",
            AddressClass::Reserved => "a reserved address",
        }
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// A refused address: its class and, for an IPv6 address that carries an IPv4 one
/// (mapped, compatible, NAT64, 6to4, Teredo), the IPv4 address that was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Forbidden {
    /// The address that was refused.
    pub addr: IpAddr,
    /// Its class (of the embedded IPv4 address where there is one).
    pub class: AddressClass,
    /// The IPv4 address embedded in `addr`, when that is what was judged.
    pub embedded: Option<Ipv4Addr>,
}

impl fmt::Display for Forbidden {
    /// "127.0.0.2, a loopback address" or
    /// "::ffff:127.0.0.1, which embeds 127.0.0.1, a loopback address".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.embedded {
            Some(v4) => write!(f, "{}, which embeds {v4}, {}", self.addr, self.class),
            None => write!(f, "{}, {}", self.addr, self.class),
        }
    }
}

/// Why `ip` may not be fetched from, or `None` when it is a public unicast address.
///
/// IPv6 addresses that carry an IPv4 address are judged by that address: IPv4-mapped
/// (`::ffff:a.b.c.d`), IPv4-translated (`::ffff:0:a.b.c.d`), IPv4-compatible
/// (`::a.b.c.d`), NAT64 (`64:ff9b::/96`), 6to4 (`2002::/16`) and Teredo (`2001::/32`, its
/// client address).
///
/// ```
/// use std::net::IpAddr;
/// use mltb_engine::egress::{forbidden, AddressClass};
///
/// let ip: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
/// assert_eq!(forbidden(ip).unwrap().class, AddressClass::Loopback);
/// assert!(forbidden("93.184.215.14".parse().unwrap()).is_none());
/// ```
pub fn forbidden(ip: IpAddr) -> Option<Forbidden> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4).map(|class| Forbidden { addr: ip, class, embedded: None }),
        IpAddr::V6(v6) => {
            if let Some(class) = classify_v6(v6) {
                return Some(Forbidden { addr: ip, class, embedded: None });
            }
            let v4 = embedded_v4(v6)?;
            classify_v4(v4).map(|class| Forbidden { addr: ip, class, embedded: Some(v4) })
        }
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], len: u32) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddressClass> {
    use AddressClass::*;
    // Specific addresses before the ranges that contain them.
    const TABLE: &[([u8; 4], u32, AddressClass)] = &[
        ([255, 255, 255, 255], 32, Broadcast),
        ([169, 254, 169, 254], 32, CloudMetadata),
        ([100, 100, 100, 200], 32, CloudMetadata),
        ([0, 0, 0, 0], 8, Unspecified),
        ([10, 0, 0, 0], 8, Private),
        ([100, 64, 0, 0], 10, SharedCgnat),
        ([127, 0, 0, 0], 8, Loopback),
        ([169, 254, 0, 0], 16, LinkLocal),
        ([172, 16, 0, 0], 12, Private),
        ([192, 0, 0, 0], 24, Reserved),
        ([192, 0, 2, 0], 24, Documentation),
        ([192, 88, 99, 0], 24, Reserved),
        ([192, 168, 0, 0], 16, Private),
        ([198, 18, 0, 0], 15, Benchmarking),
        ([198, 51, 100, 0], 24, Documentation),
        ([203, 0, 113, 0], 24, Documentation),
        ([224, 0, 0, 0], 4, Multicast),
        ([240, 0, 0, 0], 4, Reserved),
    ];
    TABLE.iter().find(|(net, len, _)| in_v4(ip, *net, *len)).map(|(_, _, class)| *class)
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, len: u32) -> bool {
    let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
    u128::from(ip) & mask == u128::from(net) & mask
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddressClass> {
    use AddressClass::*;
    if ip.is_unspecified() {
        return Some(Unspecified);
    }
    if ip.is_loopback() {
        return Some(Loopback);
    }
    const TABLE: &[(u128, u32, AddressClass)] = &[
        (0xfd00_0ec2_0000_0000_0000_0000_0000_0254, 128, CloudMetadata),
        (0xfc00 << 112, 7, UniqueLocal),
        (0xfe80 << 112, 10, LinkLocal),
        (0xfec0 << 112, 10, Private),
        (0xff00 << 112, 8, Multicast),
        (0x2001_0db8 << 96, 32, Documentation),
        (0x3fff << 112, 20, Documentation),
        (0x0100 << 112, 64, Reserved),
        (0x0064_ff9b_0001 << 80, 48, Private),
    ];
    TABLE.iter().find(|(net, len, _)| in_v6(ip, Ipv6Addr::from(*net), *len)).map(|(_, _, class)| *class)
}

/// The IPv4 address an IPv6 address carries, for the forms that reach it.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    let low = Ipv4Addr::from(bits as u32);
    let prefix96 = bits >> 32;
    match prefix96 {
        // ::a.b.c.d (compatible, deprecated), ::ffff:a.b.c.d (mapped),
        // ::ffff:0:a.b.c.d (translated), 64:ff9b::a.b.c.d (NAT64).
        0 | 0xffff | 0xffff_0000 | 0x0064_ff9b_0000_0000_0000_0000 => Some(low),
        _ if bits >> 112 == 0x2002 => Some(Ipv4Addr::from((bits >> 80) as u32)),
        // Teredo: the client's address is stored inverted in the low 32 bits.
        _ if bits >> 96 == 0x2001_0000 => Some(Ipv4Addr::from(!(bits as u32))),
        _ => None,
    }
}

/// Reads `host` as libc's `inet_aton` (and so `getaddrinfo`, curl and aria2) would: one
/// to four parts separated by dots, each decimal, octal (leading `0`) or hexadecimal
/// (leading `0x`), the last part filling the remaining bytes. `2130706433`,
/// `0x7f000001`, `0177.0.0.1` and `127.1` all read as `127.0.0.1`. One trailing dot is
/// accepted (as URL parsers do; libc would look the name up instead). `None` for anything else.
///
/// ```
/// use std::net::Ipv4Addr;
/// use mltb_engine::egress::parse_ipv4_loose;
///
/// assert_eq!(parse_ipv4_loose("0x7f.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
/// assert_eq!(parse_ipv4_loose("example.com"), None);
/// ```
pub fn parse_ipv4_loose(host: &str) -> Option<Ipv4Addr> {
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.len() > 64 {
        return None;
    }
    let mut parts = [0u64; 4];
    let mut count = 0;
    for part in host.split('.') {
        if count == 4 {
            return None;
        }
        parts[count] = parse_part(part)?;
        count += 1;
    }
    let (head, last) = (&parts[..count - 1], parts[count - 1]);
    if head.iter().any(|&p| p > 255) {
        return None;
    }
    let last_bits = 8 * (5 - count as u32);
    if last_bits < 64 && last >> last_bits != 0 {
        return None;
    }
    let mut value: u64 = 0;
    for (i, &p) in head.iter().enumerate() {
        value |= p << (24 - 8 * i);
    }
    value |= last;
    u32::try_from(value).ok().map(Ipv4Addr::from)
}

fn parse_part(part: &str) -> Option<u64> {
    let (digits, radix) = if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
        (hex, 16)
    } else if part.len() > 1 && part.starts_with('0') {
        (&part[1..], 8)
    } else {
        (part, 10)
    };
    if digits.is_empty() || digits.len() > 32 || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    // Overflow past u64 means far past 32 bits: not an address.
    u64::from_str_radix(digits, radix).ok()
}

/// Reads a host as an IP address: an IPv6 literal (with or without brackets, without a
/// zone), or an IPv4 address in any of the forms [`parse_ipv4_loose`] accepts.
pub fn parse_ip_host(host: &str) -> Option<IpAddr> {
    let inner = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if inner.contains(':') {
        return inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    parse_ipv4_loose(inner).map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> Option<AddressClass> {
        forbidden(s.parse().unwrap()).map(|f| f.class)
    }

    #[test]
    fn every_class() {
        use AddressClass::*;
        let table: &[(&str, Option<AddressClass>)] = &[
            ("0.0.0.0", Some(Unspecified)),
            ("0.1.2.3", Some(Unspecified)),
            ("10.0.0.1", Some(Private)),
            ("10.255.255.255", Some(Private)),
            ("100.64.0.1", Some(SharedCgnat)),
            ("100.127.255.255", Some(SharedCgnat)),
            ("100.128.0.0", None),
            ("100.63.255.255", None),
            ("100.100.100.200", Some(CloudMetadata)),
            ("127.0.0.1", Some(Loopback)),
            ("127.0.0.2", Some(Loopback)),
            ("127.255.255.254", Some(Loopback)),
            ("169.254.0.1", Some(LinkLocal)),
            ("169.254.169.254", Some(CloudMetadata)),
            ("172.15.255.255", None),
            ("172.16.0.1", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("172.32.0.0", None),
            ("192.0.0.8", Some(Reserved)),
            ("192.0.2.1", Some(Documentation)),
            ("192.88.99.1", Some(Reserved)),
            ("192.168.1.1", Some(Private)),
            ("198.18.0.1", Some(Benchmarking)),
            ("198.19.255.255", Some(Benchmarking)),
            ("198.20.0.0", None),
            ("198.51.100.7", Some(Documentation)),
            ("203.0.113.9", Some(Documentation)),
            ("224.0.0.1", Some(Multicast)),
            ("239.255.255.250", Some(Multicast)),
            ("240.0.0.1", Some(Reserved)),
            ("255.255.255.254", Some(Reserved)),
            ("255.255.255.255", Some(Broadcast)),
            ("8.8.8.8", None),
            ("1.1.1.1", None),
            ("93.184.215.14", None),
            ("::", Some(Unspecified)),
            ("::1", Some(Loopback)),
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:7f00:1", Some(Loopback)),
            ("::ffff:10.0.0.1", Some(Private)),
            ("::ffff:169.254.169.254", Some(CloudMetadata)),
            ("::ffff:8.8.8.8", None),
            ("::ffff:0:127.0.0.1", Some(Loopback)),
            ("::127.0.0.1", Some(Loopback)),
            ("::0.0.0.2", Some(Unspecified)),
            ("64:ff9b::127.0.0.1", Some(Loopback)),
            ("64:ff9b::a9fe:a9fe", Some(CloudMetadata)),
            ("64:ff9b::8.8.8.8", None),
            ("64:ff9b:1::1", Some(Private)),
            ("2002:7f00:1::", Some(Loopback)),
            ("2002:c0a8:101::1", Some(Private)),
            ("2002:808:808::1", None),
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", Some(Loopback)), // client 127.0.0.1
            ("fc00::1", Some(UniqueLocal)),
            ("fdff::1", Some(UniqueLocal)),
            ("fd00:ec2::254", Some(CloudMetadata)),
            ("fe80::1", Some(LinkLocal)),
            ("febf::1", Some(LinkLocal)),
            ("fec0::1", Some(Private)),
            ("ff02::1", Some(Multicast)),
            ("2001:db8::1", Some(Documentation)),
            ("3fff::1", Some(Documentation)),
            ("100::1", Some(Reserved)),
            ("2606:4700:4700::1111", None),
            ("2a00:1450:4001:80b::200e", None),
        ];
        for (ip, want) in table {
            assert_eq!(class(ip), *want, "{ip}");
        }
    }

    #[test]
    fn reasons_name_the_embedded_address() {
        let f = forbidden("::ffff:127.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(f.to_string(), "::ffff:127.0.0.1, which embeds 127.0.0.1, a loopback address");
        let f = forbidden("127.0.0.2".parse().unwrap()).unwrap();
        assert_eq!(f.to_string(), "127.0.0.2, a loopback address");
    }

    #[test]
    fn numeric_forms_read_as_libc_reads_them() {
        let lo = Some(Ipv4Addr::new(127, 0, 0, 1));
        for host in [
            "127.0.0.1",
            "2130706433",
            "0x7f000001",
            "0X7F000001",
            "0177.0.0.1",
            "0177.0000.0000.0001",
            "127.1",
            "127.0.1",
            "0x7f.1",
            "0x7f.0.0.0x1",
            "017700000001",
            "127.0.0.1.",
        ] {
            assert_eq!(parse_ipv4_loose(host), lo, "{host}");
        }
        assert_eq!(parse_ipv4_loose("0"), Some(Ipv4Addr::UNSPECIFIED));
        assert_eq!(parse_ipv4_loose("10.1"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(parse_ipv4_loose("192.168.257"), Some(Ipv4Addr::new(192, 168, 1, 1)));
        for host in [
            "",
            ".",
            "0x",
            "256.0.0.1",
            "1.2.3.4.5",
            "4294967296",
            "0x100000000",
            "08.0.0.1",
            "1..1",
            "1.2.3.",
            "example.com",
            "127.0.0.1x",
            "-1",
            "+1",
            "1.256.1",
            "1.2.65536",
            "99999999999999999999999999999999999",
        ] {
            // "1.2.3." reads as "1.2.3" once the trailing dot goes; that is fine.
            if host == "1.2.3." {
                assert_eq!(parse_ipv4_loose(host), Some(Ipv4Addr::new(1, 2, 0, 3)));
                continue;
            }
            assert_eq!(parse_ipv4_loose(host), None, "{host}");
        }
    }

    #[test]
    fn ip_hosts() {
        assert_eq!(parse_ip_host("[::ffff:7f00:1]"), Some("::ffff:127.0.0.1".parse().unwrap()));
        assert_eq!(parse_ip_host("::1"), Some("::1".parse().unwrap()));
        assert_eq!(parse_ip_host("0x7f000001"), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(parse_ip_host("[fe80::1%eth0]"), None);
        assert_eq!(parse_ip_host("files.lan"), None);
    }
}
