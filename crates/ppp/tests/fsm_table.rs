//! RFC 1661 section 4.1: every cell of the state transition table, written
//! out here as the RFC prints it, checked against `fsm::transition` and run
//! through a live `Fsm` to see each action's effect.

use std::fmt;
use std::time::{Duration, Instant};

use tsunagi_ppp::fsm::{
    transition, Action, Fsm, FsmEvent, Negotiator, OptionVerdict, Output, State,
};
use tsunagi_ppp::wire::{Code, ControlPacket, Protocol, RawOption, WireError};
use tsunagi_ppp::FsmTimers;

/// RFC 1661 s4.1, states 0 to 5.
const TABLE_A: &str = "
      | State
      |    0         1         2         3         4         5
Events| Initial   Starting  Closed    Stopped   Closing   Stopping
------+-----------------------------------------------------------
 Up   |    2     irc,scr/6     -         -         -         -
 Down |    -         -         0       tls/1       0         1
 Open |  tls/1       1     irc,scr/6     3r        5r        5r
 Close|    0       tlf/0       2         2         4         4
      |
  TO+ |    -         -         -         -       str/4     str/5
  TO- |    -         -         -         -       tlf/2     tlf/3
      |
 RCR+ |    -         -       sta/2 irc,scr,sca/8   4         5
 RCR- |    -         -       sta/2 irc,scr,scn/6   4         5
 RCA  |    -         -       sta/2     sta/3       4         5
 RCN  |    -         -       sta/2     sta/3       4         5
      |
 RTR  |    -         -       sta/2     sta/3     sta/4     sta/5
 RTA  |    -         -         2         3       tlf/2     tlf/3
      |
 RUC  |    -         -       scj/2     scj/3     scj/4     scj/5
 RXJ+ |    -         -         2         3         4         5
 RXJ- |    -         -       tlf/2     tlf/3     tlf/2     tlf/3
      |
 RXR  |    -         -         2         3         4         5
";

/// RFC 1661 s4.1, states 6 to 9.
const TABLE_B: &str = "
      | State
      |    6         7         8           9
Events| Req-Sent  Ack-Rcvd  Ack-Sent    Opened
------+-----------------------------------------
 Up   |    -         -         -           -
 Down |    1         1         1         tld/1
 Open |    6         7         8           9r
 Close|irc,str/4 irc,str/4 irc,str/4 tld,irc,str/4
      |
  TO+ |  scr/6     scr/6     scr/8         -
  TO- |  tlf/3p    tlf/3p    tlf/3p        -
      |
 RCR+ |  sca/8   sca,tlu/9   sca/8   tld,scr,sca/8
 RCR- |  scn/6     scn/7     scn/6   tld,scr,scn/6
 RCA  |  irc/7     scr/6x  irc,tlu/9   tld,scr/6x
 RCN  |irc,scr/6   scr/6x  irc,scr/8   tld,scr/6x
      |
 RTR  |  sta/6     sta/6     sta/6   tld,zrc,sta/5
 RTA  |    6         6         8       tld,scr/6
      |
 RUC  |  scj/6     scj/7     scj/8       scj/9
 RXJ+ |    6         6         8           9
 RXJ- |  tlf/3     tlf/3     tlf/3   tld,irc,str/5
      |
 RXR  |    6         7         8         ser/9
";

/// One parsed cell: `None` for "-", else actions and next state.
type Cell = Option<(Vec<Action>, State)>;

fn action(name: &str) -> Action {
    match name {
        "tlu" => Action::Tlu,
        "tld" => Action::Tld,
        "tls" => Action::Tls,
        "tlf" => Action::Tlf,
        "irc" => Action::Irc,
        "zrc" => Action::Zrc,
        "scr" => Action::Scr,
        "sca" => Action::Sca,
        "scn" => Action::Scn,
        "str" => Action::Str,
        "sta" => Action::Sta,
        "scj" => Action::Scj,
        "ser" => Action::Ser,
        other => panic!("unknown action {other}"),
    }
}

fn event(name: &str) -> FsmEvent {
    FsmEvent::ALL
        .into_iter()
        .find(|e| e.rfc_name() == name)
        .unwrap_or_else(|| panic!("unknown event {name}"))
}

/// "irc,scr/6" -> ([Irc, Scr], Req-Sent); "3r" -> ([], Stopped); "-" -> None.
/// The footnote letters r, p, x (optional behaviours) are dropped.
fn cell(text: &str) -> Cell {
    if text == "-" {
        return None;
    }
    let (actions, state) = match text.split_once('/') {
        Some((a, s)) => (a.split(',').map(action).collect(), s),
        None => (Vec::new(), text),
    };
    let number: usize = state
        .trim_end_matches(['r', 'p', 'x'])
        .parse()
        .expect("state number");
    Some((actions, State::ALL[number]))
}

/// Parses a half table into (event, [cells]).
fn parse(table: &str, first_state: usize) -> Vec<(FsmEvent, usize, Cell)> {
    let mut cells = Vec::new();
    for line in table.lines() {
        let Some((label, rest)) = line.split_once('|') else {
            continue;
        };
        let label = label.trim();
        if label.is_empty() || label == "Events" || label.starts_with('-') {
            continue;
        }
        // Cells are separated by spaces, but "irc,scr/6" style cells may
        // touch the bar; split on whitespace.
        let texts: Vec<&str> = rest.split_whitespace().collect();
        for (i, text) in texts.iter().enumerate() {
            cells.push((event(label), first_state + i, cell(text)));
        }
    }
    cells
}

fn rfc_table() -> Vec<(FsmEvent, State, Cell)> {
    let mut all: Vec<_> = parse(TABLE_A, 0)
        .into_iter()
        .chain(parse(TABLE_B, 6))
        .map(|(e, s, c)| (e, State::ALL[s], c))
        .collect();
    all.sort_by_key(|(e, s, _)| (FsmEvent::ALL.iter().position(|x| x == e), s.number()));
    all
}

#[test]
fn table_has_all_160_cells() {
    let table = rfc_table();
    assert_eq!(table.len(), 16 * 10);
    for event in FsmEvent::ALL {
        for state in State::ALL {
            assert_eq!(
                table
                    .iter()
                    .filter(|(e, s, _)| *e == event && *s == state)
                    .count(),
                1,
                "cell {} / {}",
                event.rfc_name(),
                state
            );
        }
    }
}

#[test]
fn transition_matches_rfc_in_every_cell() {
    for (event, state, expected) in rfc_table() {
        let got = transition(state, event).map(|t| (t.actions.to_vec(), t.next));
        assert_eq!(
            got,
            expected,
            "event {} in state {}",
            event.rfc_name(),
            state
        );
    }
}

/// A negotiator that asks for nothing and accepts everything.
struct Plain;

impl Negotiator for Plain {
    const PROTOCOL: Protocol = Protocol::Ipcp;
    const NAME: &'static str = "TEST";
    fn reset(&mut self) {}
    fn build_request(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[1, 2]);
    }
    fn check_option(
        &mut self,
        _: &RawOption<'_>,
        _: &mut Vec<u8>,
    ) -> Result<OptionVerdict, WireError> {
        Ok(OptionVerdict::Ack)
    }
    fn handle_nak(&mut self, _: &RawOption<'_>) -> Result<(), WireError> {
        Ok(())
    }
    fn handle_reject(&mut self, _: &RawOption<'_>) -> Result<(), WireError> {
        Ok(())
    }
    fn validate_option(_: &RawOption<'_>) -> Result<(), WireError> {
        Ok(())
    }
    fn describe_option(f: &mut fmt::Formatter<'_>, _: &RawOption<'_>) -> fmt::Result {
        f.write_str("x")
    }
}

fn timers() -> FsmTimers {
    FsmTimers {
        restart: Duration::from_secs(3),
        max_configure: 10,
        max_terminate: 2,
        max_failure: 5,
    }
}

fn code_of(packet: &[u8]) -> Code {
    ControlPacket::new_checked(packet)
        .expect("packet we built")
        .code()
}

/// Runs every cell on a live automaton and checks the effect of each
/// action: packets sent, layer signals, restart counter and timer.
#[test]
fn every_cell_runs_its_actions() {
    let now = Instant::now();
    for (event, state, expected) in rfc_table() {
        let mut fsm = Fsm::new(Plain, timers());
        fsm.force_state(state);
        let mut out = Output::default();
        fsm.inject(now, event, &mut out);
        let what = format!("event {} in state {}", event.rfc_name(), state);
        let Some((actions, next)) = expected else {
            assert_eq!(fsm.state(), state, "{what}: '-' must not move");
            assert!(
                out.packets.is_empty() && out.signals.is_empty(),
                "{what}: '-' must do nothing"
            );
            continue;
        };
        assert_eq!(fsm.state(), next, "{what}");
        assert_eq!(out.actions, actions, "{what}");
        // Packets in the order of their actions.
        let sent: Vec<Code> = out.packets.iter().map(|p| code_of(p)).collect();
        let expected_sent: Vec<Code> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Scr => Some(Code::ConfigureRequest),
                Action::Sca => Some(Code::ConfigureAck),
                Action::Scn => Some(Code::ConfigureNak),
                Action::Str => Some(Code::TerminateRequest),
                Action::Sta => Some(Code::TerminateAck),
                Action::Scj => Some(Code::CodeReject),
                _ => None,
            })
            .collect();
        assert_eq!(sent, expected_sent, "{what}: packets");
        let signals: Vec<_> = out.signals.iter().map(|s| format!("{s:?}")).collect();
        let expected_signals: Vec<_> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Tlu => Some("Up"),
                Action::Tld => Some("Down"),
                Action::Tls => Some("Started"),
                Action::Tlf => Some("Finished"),
                _ => None,
            })
            .collect();
        assert_eq!(signals, expected_signals, "{what}: signals");
        assert_eq!(
            out.send_echo_reply,
            actions.contains(&Action::Ser),
            "{what}: ser"
        );
        // irc sets Max-Terminate before str, Max-Configure otherwise; each
        // scr/str takes one off and (re)starts the timer; zrc zeroes.
        if actions.contains(&Action::Irc) {
            let base = if actions.contains(&Action::Str) {
                2
            } else {
                10
            };
            let sends = actions
                .iter()
                .filter(|a| matches!(a, Action::Scr | Action::Str))
                .count() as u32;
            assert_eq!(fsm.restart_count(), base - sends, "{what}: irc");
        }
        if actions.contains(&Action::Zrc) {
            assert_eq!(fsm.restart_count(), 0, "{what}: zrc");
        }
        let timer_state = matches!(
            next,
            State::Closing | State::Stopping | State::ReqSent | State::AckRcvd | State::AckSent
        );
        if actions
            .iter()
            .any(|a| matches!(a, Action::Scr | Action::Str | Action::Zrc))
        {
            assert_eq!(
                fsm.deadline(),
                Some(now + Duration::from_secs(3)),
                "{what}: timer"
            );
        }
        if !timer_state {
            assert_eq!(
                fsm.deadline(),
                None,
                "{what}: timer stops outside states 4..8"
            );
        }
    }
}

/// The restart timer gives TO+ while the counter lasts, then TO-
/// (RFC 1661 s4.6 Max-Configure).
#[test]
fn restart_timer_counts_max_configure() {
    let start = Instant::now();
    let mut fsm = Fsm::new(Plain, timers());
    let mut out = Output::default();
    fsm.open(start, &mut out);
    fsm.up(start, &mut out);
    assert_eq!(fsm.state(), State::ReqSent);
    let mut now = start;
    while let Some(deadline) = fsm.deadline() {
        now = deadline;
        fsm.handle_timeout(now, &mut out);
    }
    let requests = out
        .packets
        .iter()
        .filter(|p| code_of(p) == Code::ConfigureRequest)
        .count();
    assert_eq!(requests, 10);
    assert_eq!(fsm.state(), State::Stopped);
    assert_eq!(now - start, Duration::from_secs(30));
    assert!(fsm.max_configure_reached);
}
