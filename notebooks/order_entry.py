# %% [markdown]
# > **Stored outputs below show a scratch book: Run All (Run ▸ Run All Cells) to work on the shared book.**
#
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
from oms.widgets import OrderEntry, show, text

book = session()
print(book)

# %% [markdown]
# ## The order desk
#
# Fill the ticket and press **Submit**; a field is checked once you have typed in it, and a
# refusal is shown under the ticket with its code (`VALIDATION_ERROR`,
# `DUPLICATE_CLIENT_ORDER_ID`, ...). After a successful Submit the ticket is cleared.
# **Cancel** and **Execute** ask you to confirm first. The blotter filters by status and
# symbol, sorts by any column, writes what it shows to a CSV file (**Export CSV**, under
# `exports/` beside this notebook), and refreshes by itself when the book changes in another
# notebook or from the CLI (untick *auto-refresh* to stop it). Prices print exactly as the
# book holds them; times are UTC.

# %% tags=["nbval-ignore-output"]
desk = OrderEntry(book.gateway)
desk

# %% [markdown]
# ## Scripted clicks
#
# The same widgets on a fresh scratch book, clicked by code exactly as a person would
# (`.value = ...` or `ticket.fill(...)`, then `.click()`). Each step asserts what must hold
# and prints the widget's status line; nbval compares these printed results on every test run.

# %%
demo = OrderEntry(scratch())
ticket, actions = demo.ticket, demo.actions
print("blank ticket:", text(ticket.feedback))  # nothing is an error before it is touched

ticket.fill(symbol="INFY", side="BUY", quantity="100", price="1500.25", client_order_id="OE-1")
print("feedback:", text(ticket.feedback))
ticket.submit_button.click()
assert demo.blotter.frame["order_id"].tolist() == [1]
print(text(ticket.status))
print("after submit:", text(ticket.feedback))  # cleared: a second click enters nothing
assert ticket.symbol.value == ticket.quantity.value == ticket.price.value == ""

# %% [markdown]
# Refusals are shown inline with their code, and change nothing:

# %%
ticket.fill(symbol="INFY", quantity="1O0", price="1500.25")  # letter O, not zero
print("feedback:", text(ticket.feedback))
ticket.submit_button.click()
print(text(ticket.status))

ticket.fill(quantity="100", client_order_id="OE-1")  # already used by order 1
ticket.submit_button.click()
print(text(ticket.status))
assert len(demo.blotter.frame) == 1

# %%
ticket.fill(symbol="tcs", side="SELL", order_type="MARKET", quantity="50", client_order_id="OE-2")
ticket.submit_button.click()  # no price for a market order: the field is disabled
assert ticket.price.disabled
print(text(ticket.status))

# %% [markdown]
# Order actions: the buttons follow the lifecycle table, and the status line describes
# the order you pick.

# %%
actions.select(1)
print(text(actions.status))
actions.new_price.value = "1499.5"
actions.buttons[Action.MODIFY].click()
print(text(actions.status))
print("order 1 allows:", [a.value for a in actions.enabled()])
assert actions.enabled() == (Action.EXECUTE,)

actions.cancel()  # the Cancel button is disabled now; called anyway, the gateway refuses
print(text(actions.status))

# %% [markdown]
# **Execute** and **Cancel** ask first: the click shows a confirmation row, and only its
# **Confirm** button acts (**Back**, another pick or any other action puts it away).

# %%
actions.execution_price.value = "1500"  # worse than the 1499.5 limit for a BUY
actions.buttons[Action.EXECUTE].click()
print(text(actions.confirm_text))
actions.confirm_button.click()
print(text(actions.status))
actions.execution_price.value = "1499"
actions.buttons[Action.EXECUTE].click()
actions.confirm_button.click()
print(text(actions.status))

actions.select(2)
print(text(actions.status))
actions.buttons[Action.EXECUTE].click()
actions.back_button.click()  # changed my mind: nothing happens
print("after Back:", demo.gateway.get(2).status.value)
actions.buttons[Action.EXECUTE].click()
actions.confirm_button.click()  # a MARKET order needs an execution price
print(text(actions.status))
actions.execution_price.value = "3890.5"
actions.buttons[Action.EXECUTE].click()
actions.confirm_button.click()
print(text(actions.status))
assert actions.enabled() == ()

# %% [markdown]
# The book after the clicks, and order 1's audit trail (accepted and refused commands):

# %%
print(text(demo.blotter.status))
print(orders_table(demo.gateway.orders()).to_string(index=False))

# %%
show(events(demo.gateway, 1)[["seq", "action", "from_status", "to_status", "accepted", "reason", "price", "at"]])
