use super::*;

#[test]
fn expire_intervals() {
    let days = |n: u64| Some(Duration::from_secs(n * 86_400));
    assert_eq!(parse_expire_interval("30"), Ok(days(30)));
    assert_eq!(parse_expire_interval("30day"), Ok(days(30)));
    assert_eq!(parse_expire_interval("2 days"), Ok(days(2)));
    assert_eq!(
        parse_expire_interval("12hr"),
        Ok(Some(Duration::from_secs(12 * 3600)))
    );
    assert_eq!(
        parse_expire_interval("90min"),
        Ok(Some(Duration::from_secs(90 * 60)))
    );
    assert_eq!(parse_expire_interval("0"), Ok(None));
    assert_eq!(parse_expire_interval("0day"), Ok(None));
    assert!(parse_expire_interval("day").is_err());
    assert!(parse_expire_interval("3 fortnights").is_err());
    assert!(parse_expire_interval("99999999999999999999").is_err());
}

#[test]
fn networks() {
    assert_eq!(
        parse_network("10.0.0.0/8"),
        Ok(Some(PeerMatch::Network("10.0.0.0/8".parse().unwrap())))
    );
    assert_eq!(
        parse_network("::1"),
        Ok(Some(PeerMatch::Network("::1/128".parse().unwrap())))
    );
    assert!(parse_network("10.0.0.0/33").is_err());
    assert!(check_time_fmt("%d %b %H:%M:%S").is_ok());
    assert!(check_time_fmt("%Q").is_err());
    assert!(check_time_fmt("").is_err());
    assert!(parse_network("10.0.0.256").is_err());
    assert_eq!(parse_network("sensor1.example"), Ok(None));
}
