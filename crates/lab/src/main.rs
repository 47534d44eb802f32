//! The `tsunagi-lab` binary: see [`tsunagi_lab`]. Not part of the gateway;
//! the daemons it starts run the `tsunagi` binary.
#![forbid(unsafe_code)]

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    match tsunagi_lab::run(tsunagi_lab::LabArgs::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tsunagi-lab: {e:#}");
            ExitCode::FAILURE
        }
    }
}
