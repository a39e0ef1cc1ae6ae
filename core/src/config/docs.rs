//! Man pages and shell completions, generated from the same clap definitions as `--help`, so the
//! packaged documentation can never drift from the binary. Packaging runs every binary once with
//! a hidden first argument: `--generate-man DIR` or `--generate-completions DIR`.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use clap::Command;
use clap_complete::Shell;

use crate::config::exit::Exit;
use crate::config::options::Binary;

/// Hidden first argument: write `<binary>.1` into the directory that follows.
pub(crate) const GENERATE_MAN: &str = "--generate-man";
/// Hidden first argument: write bash, zsh and fish completions into the directory that follows.
pub(crate) const GENERATE_COMPLETIONS: &str = "--generate-completions";

/// When `argv` asks for generated documentation, write it and return the exit code.
pub(crate) fn generate_if_asked(
    binary: &Binary,
    command: &Command,
    argv: &[OsString],
) -> Option<ExitCode> {
    let flag = argv.get(1)?.to_str()?;
    if flag != GENERATE_MAN && flag != GENERATE_COMPLETIONS {
        return None;
    }
    let Some(dir) = argv.get(2).map(Path::new) else {
        eprintln!("{flag} needs a directory");
        return Some(Exit::Usage.into());
    };
    let result = if flag == GENERATE_MAN {
        write_man(binary, command, dir)
    } else {
        write_completions(command, dir)
    };
    Some(match result {
        Ok(()) => Exit::Ok.into(),
        Err(error) => {
            eprintln!("{flag} {}: {error}", dir.display());
            Exit::Software.into()
        }
    })
}

fn write_completions(command: &Command, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let name = command.get_name().to_string();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut command = command.clone();
        clap_complete::generate_to(shell, &mut command, &name, dir)?;
    }
    Ok(())
}

fn write_man(binary: &Binary, command: &Command, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let name = command.get_name().to_string();
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut page)?;
    page.write_all(extra_sections(binary, command).as_bytes())?;
    std::fs::write(dir.join(format!("{name}.1")), page)
}

/// Escape text for roff (backslashes and leading dots/quotes).
fn roff(text: &str) -> String {
    let text = text.replace('\\', "\\e").replace('-', "\\-");
    if text.starts_with('.') || text.starts_with('\'') {
        format!("\\&{text}")
    } else {
        text
    }
}

fn extra_sections(binary: &Binary, command: &Command) -> String {
    let name = command.get_name();
    let mut out = String::from(".SH ENVIRONMENT\n");
    out.push_str("Every option can also be set in the environment; the command line wins over it, and it wins over the \\fB\\-\\-config\\fR file.\n");
    for arg in command.get_arguments() {
        if let (Some(env), Some(long)) = (arg.get_env(), arg.get_long()) {
            out.push_str(&format!(
                ".TP\n\\fB{}\\fR\nas \\fB\\-\\-{}\\fR\n",
                roff(&env.to_string_lossy()),
                roff(long)
            ));
        }
    }
    out.push_str(".TP\n\\fBEXAPROBE_LOG\\fR\na tracing filter (e.g. debug) overriding \\fB\\-v\\fR and \\fB\\-q\\fR\n");
    for (variable, meaning) in binary.environment {
        out.push_str(&format!(
            ".TP\n\\fB{}\\fR\n{}\n",
            roff(variable),
            roff(meaning)
        ));
    }
    out.push_str(&format!(
        ".SH FILES\n.TP\n\\fI/etc/exaprobe/{name}.toml\\fR\nexample configuration (\\fB\\-\\-config\\fR): keys are the long option names, e.g. up\\-metric = 100\n\
         .TP\n\\fI/usr/share/doc/{name}/exabgp.conf\\fR\nexample ExaBGP process block\n"
    ));
    out.push_str(".SH \"EXIT STATUS\"\n");
    for exit in Exit::ALL {
        out.push_str(&format!(
            ".TP\n{}\n{}\n",
            exit.code(),
            roff(&exit.meaning().replace('`', ""))
        ));
    }
    let check = roff(binary.example);
    out.push_str(&format!(
        ".SH EXAMPLES\nIn exabgp.conf (the run line on one line):\n.PP\n.nf\nprocess service {{\n    run /usr/bin/{name} \\-\\-prefix 192.0.2.10/32 \\-\\-next\\-hop 198.51.100.1 {check};\n    encoder text;\n}}\n.fi\n\
         .PP\nOnce, as a monitoring plugin:\n.PP\n.nf\n{name} \\-\\-once {check}\n.fi\n\
         .SH \"SEE ALSO\"\n\\fBexabgp\\fR(1), /usr/share/doc/{name}/\n"
    ));
    out
}
