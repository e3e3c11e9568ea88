# %% [markdown]
# # Order views
#
# The book as tables and pictures: the blotter, one order's history, summaries by status
# and by symbol, a chart, the lifecycle diagram, and a check that what the API returns is
# what DuckDB holds and what the event log replays to.
#
# Inside the workbench this notebook reads the shared book (the one the order-entry
# notebook writes to; re-run the cells to see new orders). Anywhere else it shows a scratch
# demo book — six orders on the simulated clock — which is what the stored outputs show.

# %%
from oms import views
from oms.notebook import (
    backend_check,
    lifecycle_mermaid,
    lifecycle_table,
    order_history,
    session,
    sql,
    status_chart,
)
from oms.widgets import StyledOrders

book = session(demo=True)
gw = book.gateway
print(book)

# %% [markdown]
# ## Blotter

# %%
blotter = views.blotter(gw)
blotter

# %% [markdown]
# The same orders with status colours:

# %%
StyledOrders(blotter)

# %% [markdown]
# ## One order's history
#
# Every command on the order, oldest first, with what it changed (order 5 was modified,
# then executed at its new limit).

# %%
order_history(gw, 5)

# %% [markdown]
# ## Summaries

# %%
views.summary(gw, "status")

# %%
views.summary(gw, "symbol")

# %%
status_chart(gw)

# %% [markdown]
# ## The lifecycle
#
# Generated from `oms.lifecycle.TRANSITIONS`, the one table the engine applies. Modify and
# cancel are allowed only while NEW; CANCELLED and EXECUTED are terminal.

# %%
lifecycle_mermaid()

# %%
lifecycle_table()

# %% [markdown]
# ## Backend verification
#
# SQL straight against the DuckDB tables, then three independent reads of the book
# compared: the gateway's orders, the `orders` rows in DuckDB, and the orders rebuilt by
# replaying the accepted events of `order_events`.

# %%
sql(gw, "SELECT status, count(*) AS orders, sum(quantity) AS quantity FROM orders GROUP BY status ORDER BY status")

# %%
sql(gw, "SELECT seq, order_id, action, from_status, to_status, accepted FROM order_events ORDER BY seq")

# %%
check = backend_check(gw)
assert check["matches_gateway"].all(), check
check
