# %% [markdown]
# > **This notebook always works on a fresh book of its own** (a DuckDB file in a temporary folder, simulated clock) behind a FIX 4.4 acceptor on loopback: Run All to replay it.
#
# # The order desk over FIX 4.4
#
# The same order desk as in *order entry*, but connected to the venue as a FIX client would
# be: `oms.connect("fix://127.0.0.1:PORT?sender=CLIENT&target=OMS")`. Submit, Modify and
# Cancel go out as FIX messages (NewOrderSingle 35=D, OrderCancelReplaceRequest 35=G,
# OrderCancelRequest 35=F) and the desk shows what the venue's ExecutionReports (35=8) say.
# Two things a FIX client cannot do are shown as such: **Execute** (a fill is the venue's
# own decision; it arrives as a report) and the **audit log** (FIX carries none; the history
# shows the order's FIX messages instead).
#
# Below, one order is entered, modified and filled; then its FIX messages — raw tag=value
# and decoded — are set next to the venue's audit events for it.

# %%
import tempfile
from pathlib import Path

import oms
from oms.fix import journal
from oms.fix.acceptor import AcceptorThread, FixAcceptor
from oms.lifecycle import Action
from oms.views import events
from oms.widgets import OrderEntry, describe, show, text

folder = tempfile.TemporaryDirectory(prefix="oms-fix-")
venue = oms.open(Path(folder.name) / "book.duckdb", clock=oms.SimulatedClock())
# The FIX face of the venue, stamping its messages from the venue's (simulated) clock.
acceptor = AcceptorThread(FixAcceptor(venue, sender="OMS", targets=["CLIENT"], timestamps=venue.clock))
port = acceptor.start()  # any free loopback port
fix = oms.connect(f"fix://127.0.0.1:{port}?sender=CLIENT&target=OMS", clock=venue.clock, clordid_prefix="DESK")
print("FIX 4.4 session CLIENT → OMS logged on over loopback")
print("venue: a fresh DuckDB file, simulated clock from 2026-01-05 09:15:00 UTC")

# %% [markdown]
# ## The desk, over the FIX session
#
# Use it as the order-entry desk. **Execute** stays disabled (its tooltip and the grey note
# say why); the history lists the picked order's FIX messages.

# %% tags=["nbval-ignore-output"]
desk = OrderEntry(fix)
desk

# %% [markdown]
# ## One order, by clicks
#
# The desk above, clicked by code as a person would: enter an order, then lower its limit.

# %%
desk.ticket.fill(symbol="INFY", side="BUY", quantity="100", price="1500.25", client_order_id="FIX-1")
desk.ticket.submit_button.click()
print(text(desk.ticket.status))

desk.actions.new_price.value = "1499.5"
desk.actions.buttons[Action.MODIFY].click()
print(text(desk.actions.status))

execute = desk.actions.buttons[Action.EXECUTE]
print("Execute button:", "disabled" if execute.disabled else "enabled", "—", execute.tooltip)
print("history:", text(desk.history.status))

# %% [markdown]
# The venue fills the order on its own face (here the embedded engine; a REST `POST
# /order/1/execute` is the same). The fill report (ExecType 150=F) reaches the FIX session
# that entered the order, unasked:

# %%
venue.execute(1)
filled = fix.wait_for(1, "EXECUTED")  # until the report arrives (bounded)
desk.refresh()
print("over FIX:", describe(filled))
print("blotter:", text(desk.blotter.status))

# %% [markdown]
# ## Order 1's FIX messages
#
# Raw, as they went over the wire (`|` stands for the SOH separator). `#` is the message's
# place in this session's journal (1 and 2 were the Logons).

# %%
messages = fix.messages(1)
print(journal.raw_text(messages))

# %% [markdown]
# Decoded: one row per message, fields by their FIX 4.4 names, enumerated values named.

# %%
show(journal.summary_frame(messages))

# %% [markdown]
# The fill report, tag by tag:

# %%
show(journal.decoded_frame(messages[-1]))

# %% [markdown]
# ## Next to the venue's audit events
#
# The venue's audit log for order 1, and each event beside the FIX report of it (ExecID 17
# is `<order id>-<version>`; the report's TransactTime 60 is the event's time).

# %%
show(events(venue, 1)[["seq", "action", "from_status", "to_status", "accepted", "version", "price", "executed_price", "at"]])

# %%
show(journal.beside_audit(messages, venue.events(1)))

# %% [markdown]
# Done: log the FIX session out, stop the acceptor, close the book (its temporary folder goes).
# Run the notebook again from the top for a new session.

# %%
fix.close()
acceptor.stop()
venue.close()
folder.cleanup()
print("FIX session logged out; acceptor stopped; book closed")
