//! Print the nftables JSON for an ipf.rules and ipnat.rules file:
//! `cargo run -p tsunagi-policy --example policy_compile -- IPF IPNAT [FROM=TO...]`.
use tsunagi_policy::{compile, parse_ipf, parse_ipnat, IfaceMap, Options};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: policy_compile IPF_RULES IPNAT_RULES [NAME=LINUX...]");
        std::process::exit(2);
    }
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{p}: {e}"));
    let ipf = parse_ipf(&read(&args[0])).unwrap_or_else(|e| panic!("{}: {e}", args[0]));
    let ipnat = parse_ipnat(&read(&args[1])).unwrap_or_else(|e| panic!("{}: {e}", args[1]));
    let mut map = IfaceMap::identity(&ipf, &ipnat);
    for pair in &args[2..] {
        if let Some((from, to)) = pair.split_once('=') {
            map.insert(from, to);
        }
    }
    match compile(&ipf, &ipnat, &map, &Options::default()) {
        Ok(c) => println!(
            "{}",
            serde_json::to_string_pretty(&c.ruleset).unwrap_or_default()
        ),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
