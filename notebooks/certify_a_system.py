# %% [markdown]
# *The stored outputs below show a scratch book; **Run All** (inside `make lab`) to work on the shared book.*
#
# # Certify a system
#
# Point the certification pack at an order management system -- ours or anybody else's -- and
# sign the verdict. The desk below runs the same pack and writes the same reports as
# `oms certify` (`certification/runs/run-NNN/`: report.html, junit.xml, summary.md, results.json).
#
# 1. **Pick the system**: the *scratch book* (a fresh embedded database on the simulated clock),
#    the workbench's *shared book* (the pack writes orders into it), *a URL* of a server someone
#    else runs, or *a start command* with `{port}` and `{db}` -- the pack starts that server on a
#    free loopback port and a fresh database, restarts it and kills it with `kill -9`.
# 2. **Run the pack** and watch the progress bar; the verdict names the tiers it certifies.
# 3. **Read the results**: filter by status and group, search, sort; open one case to see its
#    steps, expected vs actual, and its evidence.
# 4. **Sign off**: your name, the decision and a comment are saved with the run and filled into
#    its report.

# %% tags=["nbval-ignore-output"]
from oms.certification.desk import CertifyDesk

desk = CertifyDesk()
desk

# %% [markdown]
# ## The same desk, driven by code
#
# A run against a fresh scratch book, exactly as the buttons do it (`desk.run()`,
# `desk.table(...)`, `desk.case_text(...)`, `desk.sign(...)`). These outputs are deterministic,
# so strict nbval re-checks them on every test run.

# %%
import tempfile

scripted = CertifyDesk(where="scratch", out=tempfile.mkdtemp(prefix="certify-desk-"))
result = scripted.run()
print(result.verdict_line)
print(scripted.counts())
assert result.verdict == "CERTIFIED", result.verdict_line

# %% [markdown]
# ### What did not pass
#
# The embedded engine has no HTTP face, so its raw-HTTP cases do not apply: **NOT APPLICABLE**
# (never passed, never failed).

# %%
print(scripted.table_text(show="NOT APPLICABLE"))

# %% [markdown]
# ### Filter and sort
#
# The state-machine group, failures first (none here), then by id; and a search by words.

# %%
frame = scripted.table(group="SM", sort="status")
print(len(frame), "cases in SM;", (frame["status"] == "PASS").sum(), "passed")
print(scripted.table_text(find="kill -9"))

# %% [markdown]
# ### One case: its steps, expected vs actual, and evidence

# %%
print(scripted.case_text("EX-040"))

# %% [markdown]
# ### Sign-off
#
# Saved as `signoff.json` in the run's folder and filled into its `report.html`.

# %%
path = scripted.sign("A. Analyst", "certified", "scratch book, embedded engine", role="Test lead")
print(path.name, "saved in", scripted.run_dir.name)
print("report:", (scripted.run_dir / "report.html").name,
      "-- signed:", "A. Analyst" in (scripted.run_dir / "report.html").read_text())
