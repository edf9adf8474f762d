//! Leaving the terminal as it was found when the user presses Ctrl-C at a prompt. A hidden
//! passphrase prompt turns echo off and a menu hides the cursor; dying of SIGINT there would
//! leave the user's shell without echo or cursor.

use std::os::fd::AsRawFd;
use std::sync::{Mutex, Once};

static SAVED: Mutex<Option<(std::fs::File, libc::termios)>> = Mutex::new(None);

/// Remembers the terminal's settings and makes Ctrl-C restore them, show the cursor and exit
/// 130. Call before the first prompt; nothing may have been written yet when Ctrl-C can come.
pub fn restore_on_interrupt() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Ok(tty) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
        {
            let mut settings = std::mem::MaybeUninit::<libc::termios>::uninit();
            // SAFETY: tcgetattr fills `settings` when it returns 0; the fd is open.
            if unsafe { libc::tcgetattr(tty.as_raw_fd(), settings.as_mut_ptr()) } == 0
                && let Ok(mut saved) = SAVED.lock()
            {
                // SAFETY: initialised by the successful tcgetattr above.
                *saved = Some((tty, unsafe { settings.assume_init() }));
            }
        }
        let _ = ctrlc::set_handler(|| interrupted());
    });
}

/// Restores the terminal and exits 130 (also for an interrupted read reported as an error).
pub fn interrupted() -> ! {
    if let Ok(saved) = SAVED.lock()
        && let Some((tty, settings)) = saved.as_ref()
    {
        // SAFETY: the fd is open and `settings` came from tcgetattr on it.
        unsafe { libc::tcsetattr(tty.as_raw_fd(), libc::TCSANOW, settings) };
    }
    let _ = console::Term::stderr().show_cursor();
    eprintln!();
    std::process::exit(130);
}
