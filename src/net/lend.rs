//! Read buffers the hub lends while data is there (see
//! [`TcpStream::read_with`](super::TcpStream::read_with)).
//!
//! A green thread parked in `read(&mut buf)` with `buf` on its stack keeps
//! that buffer's pages committed while it waits: a zeroed 4 KiB array plus
//! the frames below it touch two stack pages (8 KiB) where the waiting alone
//! needs one. A lent buffer is taken from this OS thread's pool only once
//! the socket has data, and is back in the pool before the green thread
//! parks again, so an idle connection holds none: however many connections
//! wait, the buffers in use are as many as the green threads that are
//! handling data at that moment.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

/// Bytes of one lent buffer.
pub(crate) const LEND_SIZE: usize = 16 * 1024;

/// Returned buffers kept for reuse per OS thread (256 KiB); more are freed.
const KEEP: usize = 16;

thread_local! {
    static FREE: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer lent by this OS thread's pool; it goes back when dropped (also
/// when a kill unwinds the green thread holding it).
pub(crate) struct Lent(Option<Box<[u8]>>);

impl Lent {
    /// A buffer from the pool, or a new one. Its contents are whatever the
    /// last borrower left: callers expose only the bytes they read into it.
    pub(crate) fn take() -> Lent {
        let buf = FREE
            .try_with(|f| f.borrow_mut().pop())
            .ok()
            .flatten()
            .unwrap_or_else(|| vec![0; LEND_SIZE].into_boxed_slice());
        Lent(Some(buf))
    }
}

impl Deref for Lent {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.0.as_deref().unwrap_or_default()
    }
}

impl DerefMut for Lent {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.0.as_deref_mut().unwrap_or_default()
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Some(buf) = self.0.take() {
            let _ = FREE.try_with(|f| {
                let mut f = f.borrow_mut();
                if f.len() < KEEP {
                    f.push(buf);
                }
            });
        }
    }
}

/// How many returned buffers this OS thread keeps now (for tests).
#[cfg(test)]
pub(crate) fn pooled() -> usize {
    FREE.with(|f| f.borrow().len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lent_buffer_goes_back_to_the_pool_and_the_pool_is_bounded() {
        let held: Vec<Lent> = (0..KEEP + 4).map(|_| Lent::take()).collect();
        assert!(held.iter().all(|b| b.len() == LEND_SIZE));
        drop(held);
        assert_eq!(pooled(), KEEP);
        let again = Lent::take();
        assert_eq!(pooled(), KEEP - 1, "taken from the pool, not allocated");
        drop(again);
    }

    /// A connected pair: (client, server side).
    fn pair() -> (crate::net::TcpStream, crate::net::TcpStream) {
        let l = crate::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = crate::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        (c, s)
    }

    #[test]
    fn read_with_holds_no_buffer_while_it_waits_and_one_while_f_runs() {
        use std::cell::Cell;
        use std::io::Write;
        use std::rc::Rc;
        let (mut client, server) = pair();
        drop(Lent::take()); // one buffer in the pool
        let pooled_in_f = Rc::new(Cell::new(usize::MAX));
        let p = pooled_in_f.clone();
        let reader = crate::spawn(move || {
            let first = server.read_with(|d| {
                p.set(pooled());
                d.to_vec()
            });
            let end = server.read_with(|d| d.len());
            (first.unwrap(), end.unwrap())
        });
        crate::yield_now(); // the reader tries, finds nothing, parks
        crate::sleep(std::time::Duration::from_millis(5));
        assert_eq!(pooled(), 1, "a waiting reader holds no buffer");
        client.write_all(b"hello").unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let (first, end) = reader.join().unwrap();
        assert_eq!(first, b"hello", "f sees exactly the bytes read");
        assert_eq!(pooled_in_f.get(), 0, "the buffer is lent while f runs");
        assert_eq!(end, 0, "end of file: an empty slice");
        assert_eq!(pooled(), 1, "and back afterwards");
    }

    #[test]
    fn read_with_times_out_without_calling_f_and_a_kill_in_f_returns_the_buffer() {
        use std::io::Write;
        use std::time::Duration;
        let (mut client, server) = pair();
        server.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
        let err = server.read_with(|_| panic!("f runs only with data")).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        server.set_read_timeout(None).unwrap();
        let before = pooled();
        let in_f = std::rc::Rc::new(std::cell::Cell::new(false));
        let flag = in_f.clone();
        let blocked = crate::spawn(move || {
            server
                .read_with(|_| {
                    flag.set(true);
                    crate::sleep(Duration::from_secs(60));
                })
                .unwrap();
        });
        client.write_all(b"x").unwrap();
        for _ in 0..5_000 {
            if in_f.get() {
                break;
            }
            crate::sleep(Duration::from_millis(1));
        }
        assert!(in_f.get(), "the reader got the data");
        blocked.kill();
        assert!(blocked.join().unwrap_err().is_killed());
        assert_eq!(pooled(), before.max(1), "the unwind gave the buffer back");
    }
}
