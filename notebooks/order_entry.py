# %% [markdown]
# # Order entry
#
# Enter and manage orders without writing code. The **order ticket** sends a new order;
# **order actions** modify, cancel or execute the order you pick — a button is enabled only
# where the lifecycle allows that action from the order's status. The **blotter** and the
# order's **history** refresh after every action.
#
# Inside the workbench (`make lab`, i.e. `oms lab`) this notebook works on the shared book
# that the order-views notebook shows too. Opened anywhere else it works on a scratch book
# (in-memory DuckDB, simulated clock), which is what the stored outputs below show.

# %%
from oms.lifecycle import Action
from oms.notebook import orders_table, scratch, session
from oms.views import events
from oms.widgets import OrderEntry, text

book = session()
print(book)

# %% [markdown]
# ## The order desk
#
# Fill the ticket and press **Submit**. A refusal is shown under the ticket with its code
# (`VALIDATION_ERROR`, `DUPLICATE_CLIENT_ORDER_ID`, ...). Press **Refresh** on the blotter to
# see orders entered from other notebooks.

# %% tags=["nbval-ignore-output"]
desk = OrderEntry(book.gateway)
desk

# %% [markdown]
# ## Scripted clicks
#
# The same widgets on a fresh scratch book, clicked by code exactly as a person would
# (`.value = ...`, then `.click()`). Each step asserts what must hold and prints the
# widget's status line; nbval compares these printed results on every test run.

# %%
demo = OrderEntry(scratch())
ticket, actions = demo.ticket, demo.actions

ticket.symbol.value = "INFY"
ticket.side.value = "BUY"
ticket.quantity.value = "100"
ticket.price.value = "1500.25"
ticket.client_order_id.value = "OE-1"
print("feedback:", text(ticket.feedback))
ticket.submit_button.click()
assert demo.blotter.frame["order_id"].tolist() == [1]
print(text(ticket.status))

# %% [markdown]
# Refusals are shown inline with their code, and change nothing:

# %%
ticket.quantity.value = "1O0"  # letter O, not zero
print("feedback:", text(ticket.feedback))
ticket.submit_button.click()
print(text(ticket.status))

ticket.quantity.value = "100"
ticket.client_order_id.value = "OE-1"  # already used by order 1
ticket.submit_button.click()
print(text(ticket.status))
assert len(demo.blotter.frame) == 1

# %%
ticket.symbol.value = "tcs"
ticket.side.value = "SELL"
ticket.order_type.value = "MARKET"  # no price for a market order: the field is disabled
ticket.quantity.value = "50"
ticket.client_order_id.value = "OE-2"
ticket.submit_button.click()
assert ticket.price.disabled
print(text(ticket.status))

# %% [markdown]
# Order actions: the buttons follow the lifecycle table.

# %%
actions.select(1)
print("order 1 allows:", [a.value for a in actions.enabled()])
actions.new_price.value = "1499.5"
actions.buttons[Action.MODIFY].click()
print(text(actions.status))
print("order 1 allows:", [a.value for a in actions.enabled()])
assert actions.enabled() == (Action.EXECUTE,)

actions.cancel()  # the Cancel button is disabled now; called anyway, the gateway refuses
print(text(actions.status))

# %%
actions.execution_price.value = "1500"  # worse than the 1499.5 limit for a BUY
actions.buttons[Action.EXECUTE].click()
print(text(actions.status))
actions.execution_price.value = "1499"
actions.buttons[Action.EXECUTE].click()
print(text(actions.status))

actions.select(2)
actions.buttons[Action.EXECUTE].click()  # a MARKET order needs an execution price
print(text(actions.status))
actions.execution_price.value = "3890.5"
actions.buttons[Action.EXECUTE].click()
print(text(actions.status))
assert actions.enabled() == ()

# %% [markdown]
# The book after the clicks, and order 1's audit trail (accepted and refused commands):

# %%
print(text(demo.blotter.status))
print(orders_table(demo.gateway.orders()).to_string(index=False))

# %%
print(events(demo.gateway, 1)[["seq", "action", "from_status", "to_status", "accepted", "reason", "price", "at"]]
      .to_string(index=False))
