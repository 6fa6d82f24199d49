//! The classic greenlet demo: two greenlets handing control back and forth
//! by explicit switches. test1 prints 12 and switches to gr2, which prints
//! 56 and switches back; test1 prints 34 and switches to gr2 again, which
//! prints 78 and ends: its result goes to its parent, main, whose first
//! switch returns. Output: 12, 56, 34, 78.
//!
//! Run: `cargo run --example greenlet_switch`

use std::cell::RefCell;
use std::rc::Rc;

use greenhub::Greenlet;

fn main() {
    // gr2 is created after gr1, so test1 reaches it through this slot.
    let gr2_slot: Rc<RefCell<Option<Greenlet>>> = Rc::new(RefCell::new(None));

    let slot = gr2_slot.clone();
    let gr1 = Greenlet::new(move |()| {
        let gr2 = slot.borrow().clone().expect("gr2 exists");
        println!("12");
        gr2.switch::<(), ()>(());
        println!("34");
        gr2.switch::<(), ()>(());
    });

    let gr1_for_2 = gr1.clone();
    let gr2 = Greenlet::new(move |()| {
        println!("56");
        gr1_for_2.switch::<(), ()>(());
        println!("78");
    });
    *gr2_slot.borrow_mut() = Some(gr2);

    gr1.switch::<(), ()>(());
}
