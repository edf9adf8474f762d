//! Leaving the terminal as it was found when the user presses Ctrl-C at a prompt. A hidden
//! passphrase prompt turns echo off and a menu hides the cursor; dying of SIGINT there would
//! leave the user's shell without echo or cursor.

use std::sync::{Mutex, Once};

static SAVED: Mutex<Option<(std::fs::File, rustix::termios::Termios)>> = Mutex::new(None);

/// Remembers the terminal's settings and makes Ctrl-C restore them, show the cursor and exit
/// 130. Call before the first prompt; nothing may have been written yet when Ctrl-C can come.
pub fn restore_on_interrupt() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Ok(tty) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            && let Ok(settings) = rustix::termios::tcgetattr(&tty)
            && let Ok(mut saved) = SAVED.lock()
        {
            *saved = Some((tty, settings));
        }
        let _ = ctrlc::set_handler(|| interrupted());
    });
}

/// Restores the terminal and exits 130 (also for an interrupted read reported as an error).
pub fn interrupted() -> ! {
    if let Ok(saved) = SAVED.lock()
        && let Some((tty, settings)) = saved.as_ref()
    {
        let _ = rustix::termios::tcsetattr(tty, rustix::termios::OptionalActions::Now, settings);
    }
    let _ = console::Term::stderr().show_cursor();
    eprintln!();
    std::process::exit(crate::error::Exit::Interrupted.code().into());
}
