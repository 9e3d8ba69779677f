//! The `repo` binary: parse arguments, run, and map errors to a one-line message and exit code.

mod cli;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    cli.init_log();
    match cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // One line: the outermost context, then the causes.
            let msg: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}", msg.join(": "));
            std::process::exit(cli::exit::code(&e));
        }
    }
}
