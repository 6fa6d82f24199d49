//! The classic greenlet demo: two greenlets handing control back and forth
//! by explicit switches, printing 12, 56, 34, 78.
//!
//! Run: `cargo run --example greenlet_switch`

use std::cell::RefCell;
use std::rc::Rc;

use greenhub::Greenlet;

fn main() {
    // gr2 is created after gr1, so gr1 reaches it through this slot.
    let gr2_slot: Rc<RefCell<Option<Greenlet>>> = Rc::new(RefCell::new(None));

    let slot = gr2_slot.clone();
    let gr1 = Greenlet::new(move |()| {
        println!("12");
        let gr2 = slot.borrow().clone().expect("gr2 exists");
        gr2.switch::<(), ()>(());
        println!("34");
    });

    let gr1_for_2 = gr1.clone();
    let gr2 = Greenlet::new(move |()| {
        println!("56");
        gr1_for_2.switch::<(), ()>(());
        println!("78"); // never printed: gr1 finishes and control goes to main
    });
    *gr2_slot.borrow_mut() = Some(gr2.clone());

    gr1.switch::<(), ()>(());
    println!("gr1 dead: {}, gr2 dead: {}", gr1.is_dead(), gr2.is_dead());
    // Finish gr2 too, so all four lines print, as the demo shows.
    gr2.switch::<(), ()>(());
}
