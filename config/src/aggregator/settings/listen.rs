//! Who may connect: the listeners, their TLS, and the peers allowed and their tags.

use std::net::SocketAddr;

use super::*;

impl Settings<'_> {
    pub(super) fn listeners(&mut self) -> Listeners {
        let addr = |v: &str| -> Result<Option<SocketAddr>, String> {
            match v {
                "" => Ok(None),
                _ => v.parse::<SocketAddr>().map(Some).map_err(|_| {
                    format!("{v:?} is not address:port (e.g. 0.0.0.0:514 or [::1]:514)")
                }),
            }
        };
        let listen = Listeners {
            udp: self.get("ListenUDP", addr).flatten(),
            tcp: self.get("ListenTCP", addr).flatten(),
            tls: self.get("ListenTLS", addr).flatten(),
            relp: self.get("ListenRELP", addr).flatten(),
            relp_tls: self.get("ListenRELPTLS", addr).flatten(),
        };
        let streams = [
            ("ListenTCP", listen.tcp),
            ("ListenTLS", listen.tls),
            ("ListenRELP", listen.relp),
            ("ListenRELPTLS", listen.relp_tls),
        ];
        for (i, (option, a)) in streams.iter().enumerate() {
            if let Some((other, _)) = streams[..i].iter().find(|(_, b)| a.is_some() && b == a) {
                self.error(option, format!("same TCP address as {other}"));
            }
        }
        let any = listen.udp.is_some() || streams.iter().any(|(_, a)| a.is_some());
        let listener_options = [
            "ListenUDP",
            "ListenTCP",
            "ListenTLS",
            "ListenRELP",
            "ListenRELPTLS",
        ];
        // An invalid listener was reported already; an empty one is "off".
        if !any && !listener_options.iter().any(|o| self.is_set(o)) && !self.is_set("NatsServers") {
            self.errors.push(ConfigError::new(
                self.file,
                None,
                None,
                "no listener: set at least one of ListenUDP, ListenTCP, ListenTLS, ListenRELP, ListenRELPTLS (or NatsServers)",
            ));
        }
        listen
    }

    pub(super) fn tls(
        &mut self,
        listen: &Listeners,
        path_of: &dyn Fn(&str) -> Result<PathBuf, String>,
        files: Files,
    ) -> Option<TlsServer> {
        let cert_file = self.get("TLSCertFile", path_of);
        let key_file = self.get("TLSKeyFile", path_of);
        let ca_file = self.get("TLSCAFile", path_of);
        let crl_file = self.get("TLSCRLFile", path_of);
        let require_client_cert = self
            .get("TLSRequireClientCert", value::parse_bool)
            .unwrap_or(false);
        let wants_tls = listen.tls.is_some() || listen.relp_tls.is_some();
        if !wants_tls {
            for option in [
                "TLSCertFile",
                "TLSKeyFile",
                "TLSCAFile",
                "TLSRequireClientCert",
                "TLSCRLFile",
            ] {
                if self.is_set(option) {
                    self.error(option, "set, but neither ListenTLS nor ListenRELPTLS is");
                }
            }
            return None;
        }
        let option = if listen.tls.is_some() {
            "ListenTLS"
        } else {
            "ListenRELPTLS"
        };
        if !self.values.contains_key("TLSCertFile") {
            self.error(option, "TLS listeners need TLSCertFile");
        }
        if !self.values.contains_key("TLSKeyFile") {
            self.error(option, "TLS listeners need TLSKeyFile");
        }
        if require_client_cert && !self.values.contains_key("TLSCAFile") {
            self.error(
                "TLSRequireClientCert",
                "needs TLSCAFile to verify client certificates",
            );
        }
        if crl_file.is_some() && ca_file.is_none() {
            self.error(
                "TLSCRLFile",
                "revokes client certificates, which need TLSCAFile",
            );
        }
        let tls = TlsServer {
            cert_file: cert_file?,
            key_file: key_file?,
            ca_file,
            require_client_cert,
            crl_file,
        };
        if files == Files::Read {
            for (option, message) in files::check_tls(&tls) {
                self.error(option, message);
            }
        }
        Some(tls)
    }

    pub(super) fn peers(&mut self, tls: Option<&TlsServer>) -> Vec<PeerRule> {
        let mut rules = Vec::new();
        let client_certs = tls.is_some_and(|t| t.require_client_cert);
        if let Some(list) = self.values.get("AllowedPeers").cloned() {
            for entry in list
                .value
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|e| !e.is_empty())
            {
                match parse_network(entry) {
                    Ok(Some(matcher)) => rules.push(PeerRule { matcher, tags: None }),
                    Ok(None) if client_certs => {
                        rules.push(PeerRule { matcher: PeerMatch::CertName(entry.to_owned()), tags: None })
                    }
                    Ok(None) => self.error_at(
                        list.line,
                        &list.key,
                        format!("{entry:?} is not an address or network; certificate names need TLSRequireClientCert = 1"),
                    ),
                    Err(e) => self.error_at(list.line, &list.key, e),
                }
            }
        }
        for peer in std::mem::take(&mut self.peers) {
            let key = "peer";
            let tags = match peer.tag_regex.as_deref().map(Regex::new) {
                None => None,
                Some(Ok(r)) => Some(r),
                Some(Err(e)) => {
                    self.error_at(Some(peer.line), "tag_regex", e.to_string());
                    continue;
                }
            };
            let matcher = match (peer.address.as_deref(), peer.cert_name) {
                (Some(address), None) => match parse_network(address) {
                    Ok(Some(m)) => m,
                    Ok(None) => {
                        self.error_at(
                            Some(peer.line),
                            "address",
                            format!("{address:?} is not an address or network"),
                        );
                        continue;
                    }
                    Err(e) => {
                        self.error_at(Some(peer.line), "address", e);
                        continue;
                    }
                },
                (None, Some(name)) if client_certs => PeerMatch::CertName(name),
                (None, Some(_)) => {
                    self.error_at(
                        Some(peer.line),
                        "cert_name",
                        "needs tls.require_client_cert = true",
                    );
                    continue;
                }
                _ => {
                    self.error_at(
                        Some(peer.line),
                        key,
                        "give exactly one of address or cert_name",
                    );
                    continue;
                }
            };
            rules.push(PeerRule { matcher, tags });
        }
        rules
    }
}
