"""Invoke tasks: the platform's development lifecycle. `inv --list` shows them all.

This file is the table of contents; the work lives in the `devenv` package.
"""

from invoke.collection import Collection

from devenv import requirements_installed

with requirements_installed():
    from devenv.tasks import app, aws, bus, db, devices, infra, mqtt, settings, trace

ns = Collection(infra.up, infra.down, infra.status, infra.logs, infra.clean, infra.doctor)
ns.add_task(app.build)
ns.add_task(app.run)
ns.add_task(trace.trace)
ns.add_collection(Collection("db", app.migrate, db.shell, db.snapshot, db.restore, db.snapshots))
ns.add_collection(Collection.from_module(aws))
ns.add_collection(Collection.from_module(settings))
ns.add_collection(Collection.from_module(devices))
ns.add_collection(Collection.from_module(bus))
ns.add_collection(Collection.from_module(mqtt))
