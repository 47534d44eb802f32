# Applies H7's [policy] integration to /work/main/crates/tsunagi (anchor based).
import shutil
import os
here=os.path.dirname(os.path.abspath(__file__))+'/'
root=os.path.normpath(here+'../../tsunagi')+'/'
shutil.copy(here+'tsunagi_src_policy.rs', root+'src/policy.rs')
shutil.copy(here+'tsunagi_tests_policy_daemon.rs', root+'tests/policy_daemon.rs')
def edit(path, pairs):
    s=open(root+path).read()
    for old,new in pairs:
        assert s.count(old)==1, (path, old[:60])
        s=s.replace(old,new,1)
    open(root+path,'w').write(s)
edit('src/lib.rs',[("pub mod logging;\n","pub mod logging;\npub mod policy;\n"),
  ("//! - [`lab`]: seed 000's two sites in network namespaces (`tsunagi lab`).\n",
   "//! - [`lab`]: seed 000's two sites in network namespaces (`tsunagi lab`);\n//! - [`policy`]: `[policy]`, ipf/ipnat rules applied as nftables, ipmon lines.\n")])
edit('src/config.rs',[
("""    #[serde(default)]
    link: BTreeMap<String, Spanned<RawLink>>,
}""","""    #[serde(default)]
    link: BTreeMap<String, Spanned<RawLink>>,
    policy: Option<Spanned<crate::policy::RawPolicy>>,
}"""),
("""    /// The links, sorted by name.
    pub links: Vec<LinkSettings>,
}""","""    /// The links, sorted by name.
    pub links: Vec<LinkSettings>,
    /// `[policy]`: filter and NAT rules (see [`crate::policy`]).
    pub policy: Option<crate::policy::PolicySettings>,
}"""),
("""        Ok(Config {
            path: path.to_path_buf(),
            daemon,
            links,
        })""","""        let policy = match raw.policy {
            None => None,
            Some(p) => {
                let span = p.span();
                Some(
                    p.into_inner()
                        .validate()
                        .map_err(|m| invalid(Some(span), m))?,
                )
            }
        };
        Ok(Config {
            path: path.to_path_buf(),
            daemon,
            links,
            policy,
        })"""),
])
edit('src/cli.rs',[
("""    /// Seed 000's HOME and Labs sites in network namespaces.
    Lab(crate::lab::LabArgs),
}""","""    /// Seed 000's HOME and Labs sites in network namespaces.
    Lab(crate::lab::LabArgs),
    /// The `[policy]` rules (ipf.rules / ipnat.rules).
    Policy {
        /// What to do with them.
        #[command(subcommand)]
        action: PolicyAction,
    },
}

/// `tsunagi policy ...`
#[derive(Debug, Subcommand)]
pub enum PolicyAction {
    /// Parse and compile an ipf.rules or ipnat.rules file (by its first rule).
    Check {
        /// The rules file.
        file: PathBuf,
    },
    /// Print the nftables ruleset the config's [policy] compiles to.
    Show,
}"""),
("""        Command::Lab(args) => match crate::lab::run(args) {""","""        Command::Policy {
            action: PolicyAction::Check { file },
        } => crate::policy::check(&file),
        Command::Policy {
            action: PolicyAction::Show,
        } => match Config::load(&config_path) {
            Ok(c) => crate::policy::show(c.policy.as_ref()),
            Err(e) => {
                eprintln!("{e}");
                1
            }
        },
        Command::Lab(args) => match crate::lab::run(args) {"""),
("""                    let _ = std::io::stdout().write_all(out.as_bytes());
                    0""","""                    let _ = std::io::stdout().write_all(out.as_bytes());
                    if !json {
                        policy_status(&config_path);
                    }
                    0"""),
("""fn socket_from_env() -> Option<PathBuf> {""","""/// Per-rule hit counters after the link table, when the config has a
/// `[policy]` (reading them needs root: otherwise a note on stderr).
fn policy_status(config_path: &Path) {
    let Ok(config) = Config::load(config_path) else {
        return;
    };
    match crate::policy::status_text(config.policy.as_ref()) {
        None => {}
        Some(Ok(table)) => {
            let _ = std::io::stdout().write_all(format!("\\n{table}").as_bytes());
        }
        Some(Err(e)) => eprintln!("policy counters: {e}"),
    }
}

fn socket_from_env() -> Option<PathBuf> {"""),
])
edit('src/daemon.rs',[
("""    let listener = bind_control_socket(&socket)?;
    let netlink = match Netlink::new() {
        Ok(n) => Arc::new(n),
        Err(e) => {
            let _ = std::fs::remove_file(&socket);
            return Err(e).context("cannot open rtnetlink");
        }
    };""","""    // The filter before the control socket and any link: once the daemon
    // answers, the gateway does not run open.
    let policy = config
        .policy
        .as_ref()
        .map(crate::policy::start)
        .transpose()?;
    let stop_policy = |policy: Option<crate::policy::RunningPolicy>| {
        if let Some(p) = policy {
            p.stop();
        }
    };
    let listener = match bind_control_socket(&socket) {
        Ok(l) => l,
        Err(e) => {
            stop_policy(policy);
            return Err(e);
        }
    };
    let netlink = match Netlink::new() {
        Ok(n) => Arc::new(n),
        Err(e) => {
            let _ = std::fs::remove_file(&socket);
            stop_policy(policy);
            return Err(e).context("cannot open rtnetlink");
        }
    };"""),
("""    let _ = std::fs::remove_file(&socket);
    info!("tsunagi stopped");""","""    let _ = std::fs::remove_file(&socket);
    stop_policy(policy);
    info!("tsunagi stopped");"""),
])
print("integration applied")
