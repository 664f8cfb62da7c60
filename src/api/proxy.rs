//! The proxy the control-plane client goes through, as the environment names it
//! (`ALL_PROXY`, `HTTPS_PROXY`, `HTTP_PROXY`, in that order, and `NO_PROXY`): every one
//! that is set must be usable, and the start-up log says which is used.

use super::error::ClientSetupError;

/// The proxy variables the HTTP client reads, in the order it tries them (ureq's
/// `Proxy::try_from_env`); `NO_PROXY`/`no_proxy` beside them is a list and takes any text.
pub const PROXY_VARIABLES: [&str; 6] = [
    "ALL_PROXY",
    "all_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
];

/// Every proxy variable that is set must name a proxy the client can use: the client
/// itself skips a malformed one and goes to the next, or direct, which would send the
/// agent around the proxy its operator chose.
pub fn check_proxy_variables() -> Result<(), ClientSetupError> {
    for variable in PROXY_VARIABLES {
        let Some(value) = std::env::var_os(variable) else {
            continue;
        };
        let bad = |reason| Err(ClientSetupError::Proxy { variable, reason });
        let Some(value) = value.to_str() else {
            return bad("it is not UTF-8 text");
        };
        if value.is_empty() {
            return bad("it is set but empty");
        }
        // Exactly the text the client will parse: one it cannot parse it would skip.
        match ureq::Proxy::new(value) {
            Ok(p)
                if matches!(
                    p.protocol(),
                    ureq::ProxyProtocol::Http | ureq::ProxyProtocol::Https
                ) => {}
            Ok(_) => return bad("only http:// and https:// proxies (HTTP CONNECT) are supported"),
            Err(_) => return bad("it is not a proxy URL"),
        }
    }
    Ok(())
}

/// The proxy in use, for the start-up log line: host and port only, never credentials.
pub fn describe_proxy(proxy: Option<&ureq::Proxy>, base_url: &str) -> String {
    let Some(proxy) = proxy else {
        return "no proxy".into();
    };
    let bypassed = base_url
        .parse::<ureq::http::Uri>()
        .is_ok_and(|uri| proxy.is_no_proxy(&uri));
    if bypassed {
        format!(
            "not through proxy {}:{} (NO_PROXY matches)",
            proxy.host(),
            proxy.port()
        )
    } else {
        format!("through proxy {}:{}", proxy.host(), proxy.port())
    }
}
