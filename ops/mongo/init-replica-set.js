// Run by init-replica-set.sh through mongosh, connected directly to the first member.
// Idempotent: an initiated set is left alone (a different member list is reported, not changed).
/* global db, rs, print, quit, sleep, process */
const name = process.env.MONGO_RS_NAME;
const hosts = process.env.MONGO_MEMBERS.trim().split(/\s+/);
const waitSeconds = Number(process.env.MONGO_WAIT_SECONDS || "60");

function fail(message, code) {
  print(`init-replica-set: ERROR: ${message}`);
  quit(code || 1);
}

function currentStatus() {
  try {
    return db.adminCommand({ replSetGetStatus: 1 });
  } catch (error) {
    return { ok: 0, code: error.code, errmsg: error.message };
  }
}

function waitForPrimary() {
  const deadline = Date.now() + waitSeconds * 1000;
  while (Date.now() < deadline) {
    const status = currentStatus();
    const primary = (status.members || []).find((member) => member.stateStr === "PRIMARY");
    if (primary) return primary.name;
    sleep(1000);
  }
  return fail(`no member of ${name} became PRIMARY within ${waitSeconds}s`);
}

function ensureUser(database, user, password, roles) {
  const target = db.getSiblingDB(database);
  if (target.getUser(user)) {
    print(`init-replica-set: user ${user} on ${database} exists`);
    return;
  }
  target.createUser({ user, pwd: password, roles }, { w: "majority" });
  print(`init-replica-set: created user ${user} on ${database}`);
}

if (hosts.length < 3) fail(`a replica set for C3S needs three members, got: ${hosts.join(", ")}`);

const status = currentStatus();
if (status.ok === 1) {
  if (status.set !== name) fail(`this member belongs to replica set '${status.set}', not '${name}'`, 2);
  const have = status.members.map((member) => member.name).sort();
  const want = [...hosts].sort();
  if (JSON.stringify(have) !== JSON.stringify(want)) {
    print(`init-replica-set: WARNING: ${name} has members ${have.join(", ")}; ` +
          `MONGO_MEMBERS asks for ${want.join(", ")}. Change members with rs.add()/rs.remove().`);
  }
  print(`init-replica-set: replica set ${name} already initiated`);
} else if (status.code === 94) { // NotYetInitialized
  const config = {
    _id: name,
    members: hosts.map((host, index) => ({ _id: index, host, priority: index === 0 ? 2 : 1 })),
  };
  const result = rs.initiate(config);
  if (result.ok !== 1) fail(`rs.initiate failed: ${JSON.stringify(result)}`);
  print(`init-replica-set: initiated ${name} with ${hosts.join(", ")}`);
} else if (status.code === 13) { // Unauthorized
  fail("not authorised: put an admin user's credentials into MONGO_INIT_URI");
} else {
  fail(`cannot read the replica-set status: ${status.errmsg}`);
}

print(`init-replica-set: PRIMARY is ${waitForPrimary()}`);

// Users are created on the primary; before the first one exists the localhost exception applies.
if (db.hello().isWritablePrimary) {
  const env = process.env;
  if (env.MONGO_ADMIN_USER && env.MONGO_ADMIN_PASSWORD) {
    ensureUser("admin", env.MONGO_ADMIN_USER, env.MONGO_ADMIN_PASSWORD, ["root"]);
  }
  if (env.MONGO_APP_USER && env.MONGO_APP_PASSWORD) {
    ensureUser(env.MONGO_APP_DB || "c3s", env.MONGO_APP_USER, env.MONGO_APP_PASSWORD,
      [{ role: "readWrite", db: env.MONGO_APP_DB || "c3s" }]);
  }
  if (env.MONGO_BACKUP_USER && env.MONGO_BACKUP_PASSWORD) {
    ensureUser("admin", env.MONGO_BACKUP_USER, env.MONGO_BACKUP_PASSWORD, ["backup", "restore"]);
  }
} else if (process.env.MONGO_ADMIN_USER || process.env.MONGO_APP_USER) {
  print("init-replica-set: this member is not the primary; run again against the primary to create users");
}
