/*
 * A model of modelsync's lock protocol (src/lock/, design/locks.md), checked
 * with spin. design/model.md maps each part to the code and says what is
 * abstracted away. Run it with model/check.sh.
 *
 * Actors: scoped workers (one model lock each: LockManager#runScoped), global
 * holders (the global lock, then the drain: LockManager#runGlobal), the clock
 * (leases expire), an operator ("lock release --force"), a killer (SIGKILL)
 * and a flaky datastore (lost answers, failed renewals). Any process may be
 * paused between any two steps (SIGSTOP, a slow network): spin explores
 * every interleaving.
 *
 * Checked (assertions; spin also reports any deadlock as an invalid end state):
 *   mutual exclusion  no two processes work on one model while both hold a
 *                     valid lease (asserted whenever one starts work);
 *   fencing           no commit by a holder whose lease was lost after another
 *                     holder committed that model since the loss;
 *   no lost commit    each model's head counts every acknowledged commit;
 *   LIVENESS          (check.sh "liveness") every worker ends.
 *
 * Negative controls: each one removes one part of the protocol and must give a
 * counterexample (check.sh "controls"):
 *   NO_CONFIRM       the commit skips lease.confirm()
 *   NO_CAS           the commit writes the head blindly, no compare-and-swap
 *   OLD_CONFIRM      confirm() as it was before this model: it took the answer
 *                    of a renewal already in flight (sent before the head was
 *                    read) and passed when its renewal failed
 *   NO_RECHECK       a scoped worker does not re-check the global lock
 *   NO_DRAIN         a global holder does not wait for the model locks
 *   BLIND_TAKEOVER   a stale record is deleted, then created (no CAS)
 *   HOLD_AND_WAIT    a scoped worker waits for the global lock holding its own
 */

#ifndef NM
#define NM 2                 /* models */
#endif
#define GK NM                /* index of the global key */
#define NK (NM + 1)          /* lock keys */
#define NP 8                 /* pid slots */
#define NA 8                 /* acquisition attempts per process (nonces) */
#define ATTEMPTS 2           /* records.ts ATTEMPTS is 4 */
#define MAX_COMMITS 2        /* push.ts MAX_COMMIT_ATTEMPTS is 5 */

#ifndef W0
#define W0 2                 /* scoped workers on model 0 */
#endif
#ifndef W1
#define W1 0                 /* scoped workers on model 1 */
#endif
#ifndef GW
#define GW 1                 /* global holders (every model) */
#endif
#define WORKERS (W0 + GW + W1)

#ifndef EXPIRE
#define EXPIRE 1             /* expiries of a healthy holder's lease */
#endif
#ifndef FORCE
#define FORCE 1              /* "lock release --force" */
#endif
#ifndef KILL
#define KILL 1               /* SIGKILLs */
#endif
#ifndef FAULTS
#define FAULTS 1             /* lost answers and failed renewals */
#endif

/* ---- the datastore ------------------------------------------------------ */
/* A lock record's version token is (nonce, renewals): it changes on every write. */
byte rnonce[NK];             /* holder's nonce, 0 = no record */
byte rren[NK];               /* renewals of that record */
bool rstale[NK];             /* judged stale: expired, or its holder's pid gone */
byte head[NM];               /* each model's head generation */

/* ---- the processes, by pid --------------------------------------------- */
byte mine[NP];               /* nonce of the lease a process holds, 0 none */
byte mykey[NP];              /* the key it locks */
bool lost[NP];               /* its Lease knows the lease is lost */
bool dead[NP];               /* killed, or exited: its pid is gone */
bool working[NP * NM];       /* working on a model */

/* ---- ghosts: observers, no process reads them to decide ----------------- */
bool gone[NP];               /* the datastore stopped carrying its lease */
bool forced[NP];             /* ... because an operator released it by force */
bool fenced[NP];             /* another holder committed its model since */
byte commits[NM];            /* acknowledged commits of each model */
byte finished;               /* workers that ended or were killed */

byte expire_budget = EXPIRE;
byte force_budget = FORCE;
byte kill_budget = KILL;
byte fault_budget = FAULTS;

/*
 * SIGKILL: the process stops for good and its pid is gone. Stopping between
 * two steps is any interleaving; what a kill adds is that the records it
 * leaves expire whenever, so the kill points are after each write that
 * leaves a record behind: an acquisition, a commit.
 */
#if KILL > 0
#define CRASH \
  if \
  :: atomic { kill_budget > 0 -> kill_budget--; goto killed } \
  :: true -> skip \
  fi
#else
#define CRASH skip
#endif

#define OWNER(nonce) ((nonce) / NA)
#define WORKS(p, m) working[(p) * NM + (m)]
/*
 * Believes it holds: alive, and its Lease has not seen the lease lost. An
 * operator's "lock release --force" is excused (fencing covers it).
 */
#define BELIEVES(p) (!dead[p] && !lost[p] && !forced[p] && mine[p] != 0)
#define HOLDS(p, m) (WORKS(p, m) && BELIEVES(p))
/* The lease of the record on key k is dropped: that holder's lease is gone. */
#define DROP(k) \
  if \
  :: rnonce[k] != 0 && mine[OWNER(rnonce[k])] == rnonce[k] -> gone[OWNER(rnonce[k])] = true \
  :: else -> skip \
  fi
#define LIVE(k) (rnonce[k] != 0 && !rstale[k])

/* Our create or takeover landed: the lease counts from before it was sent. */
#define ACQUIRED(k) \
  DROP(k); rnonce[k] = n; rren[k] = 0; rstale[k] = false; \
  mine[_pid] = n; myren = 0; known = true; \
  lost[_pid] = false; gone[_pid] = false; forced[_pid] = false; fenced[_pid] = false; res = 0

/* A process that starts work on model em must be its only valid holder. */
inline enter(em) {
  d_step {
    WORKS(_pid, em) = true;
    if
    :: BELIEVES(_pid) ->
       q = 1;
       do
       :: q < NP -> assert(q == _pid || !HOLDS(q, em)); q++
       :: else -> break
       od;
       q = 0
    :: else -> skip
    fi
  }
}

/*
 * records.ts #acquire: create-if-absent; else read, and take a stale record
 * over by replacing exactly the version judged stale. res: 0 acquired,
 * 1 blocked by the live record sn, 2 a retryable error ("kept changing").
 */
inline try_acquire(ak) {
  d_step { a++; assert(a < NA); n = _pid * NA + a; i = 0; res = 2 };
  do
  :: atomic {
       i < ATTEMPTS -> i++;
       if
       :: rnonce[ak] == 0 -> ACQUIRED(ak); break
       :: rnonce[ak] == 0 && fault_budget > 0 ->
          /* created, but the answer was lost: the call fails (never retried) */
          fault_budget--; rnonce[ak] = n; rren[ak] = 0; rstale[ak] = false; break
       :: rnonce[ak] != 0 -> skip              /* refused: the key exists */
       fi
     };
     atomic {
       sn = rnonce[ak];                          /* read it */
       sr = rren[ak];
       if
       :: sn == 0 -> skip                        /* released meanwhile: again */
       :: sn != 0 && !rstale[ak] -> res = 1; break   /* live: blocked */
       :: sn != 0 && rstale[ak] -> res = 3       /* stale: take it over */
       fi
     };
#ifdef BLIND_TAKEOVER
     if
     :: atomic { res == 3 -> DROP(ak); rnonce[ak] = 0; rren[ak] = 0; rstale[ak] = false };
        atomic {
          if
          :: rnonce[ak] == 0 -> ACQUIRED(ak); break
          :: else -> res = 2
          fi
        }
     :: res != 3 -> skip
     fi
#else
     if
     :: atomic { res == 3 && rnonce[ak] == sn && rren[ak] == sr -> ACQUIRED(ak); break }
     :: atomic { res == 3 && !(rnonce[ak] == sn && rren[ak] == sr) -> res = 2 }
     :: res != 3 -> skip                         /* another contender won: look again */
     fi
#endif
  :: i >= ATTEMPTS -> break
  od;
  atomic { i = 0; n = 0; sr = 0 }
}

/* records.ts #forceRelease(nonce): delete the record only while it carries nonce. */
inline force_release(fk, fnonce) {
  atomic {
    if
    :: rnonce[fk] == fnonce ->
       if
       :: mine[OWNER(fnonce)] == fnonce -> gone[OWNER(fnonce)] = true; forced[OWNER(fnonce)] = true
       :: else -> skip
       fi;
       rnonce[fk] = 0; rren[fk] = 0; rstale[fk] = false
    :: else -> skip
    fi
  }
}

/* Read our record's version when we do not know it; known stays false when it is not ours. */
inline reread(xk) {
  atomic {
    if
    :: rnonce[xk] == mine[_pid] -> myren = rren[xk]; known = true
    :: else -> known = false
    fi
  }
}

/*
 * records.ts #renew: replace on the version we last wrote; when it changed,
 * re-read: still our nonce (an answer of ours was lost) -> take its version,
 * retry; else LeaseLostError. res: 0 renewed, 1 lost, 2 failed (a datastore
 * error left after the guard's retries).
 */
inline renew(rk) {
  d_step { i = 0; res = 1 };
  do
  :: i < ATTEMPTS ->
     i++;
     if
     :: !known -> reread(rk)
     :: else -> skip
     fi;
     if
     :: !known -> break                         /* released by force, or taken over */
     :: else -> skip
     fi;
     atomic {
       if
       :: rnonce[rk] == mine[_pid] && rren[rk] == myren ->
          rren[rk]++; rstale[rk] = false; myren = rren[rk]; res = 0; break
       :: rnonce[rk] == mine[_pid] && rren[rk] == myren && fault_budget > 0 ->
          /* landed, but the answer was lost: the call fails */
          fault_budget--; rren[rk]++; rstale[rk] = false; res = 2; break
       :: fault_budget > 0 -> fault_budget--; res = 2; break   /* failed */
       :: !(rnonce[rk] == mine[_pid] && rren[rk] == myren) -> known = false
       fi
     }
  :: i >= ATTEMPTS -> break                     /* "kept changing": lost */
  od;
  i = 0
}

/*
 * The scheduled renewal (every ttl/3) may land at any time; inflight keeps
 * its answer until the Lease next looks (0 none, else 1 + res).
 */
inline maybe_scheduled_renewal(sk) {
#ifdef RENEWALS
  if
  :: atomic { !lost[_pid] && inflight == 0 -> skip }; renew(sk); inflight = 1 + res; res = 0
  :: true -> skip
  fi
#else
  skip
#endif
}

/*
 * Lease.confirm(), right before every commit. res: 0 commit, else do not.
 * Settle the renewal in flight, then renew anew (a failed renewal is tried
 * once more: lease.ts CONFIRM_ATTEMPTS is 3); commit only after a success.
 * OLD_CONFIRM: as before this model; it took the answer of a renewal already
 * in flight (maybe sent before the head was read) and passed when its own
 * renewal failed.
 */
inline confirm(ck) {
#ifdef OLD_CONFIRM
  if
  :: lost[_pid] -> res = 1
  :: else ->
     if
     :: inflight != 0 -> res = inflight - 1; inflight = 0   /* shares the one in flight */
     :: else -> renew(ck)
     fi;
     if
     :: res == 1 -> lost[_pid] = true
     :: else -> skip
     fi;
     res = (lost[_pid] -> 1 : 0)                            /* a failed renewal passes */
  fi
#else
  if
  :: inflight == 2 -> lost[_pid] = true
  :: else -> skip
  fi;
  inflight = 0;
  tried = 0;
  do
  :: lost[_pid] -> res = 1; break
  :: else ->
     renew(ck);
     tried++;
     if
     :: res == 1 -> lost[_pid] = true
     :: res == 2 && tried < 2 -> skip          /* failed: try again */
     :: else -> break                          /* renewed (0), or failed twice (2) */
     fi
  od;
  tried = 0;
  res = (lost[_pid] -> 1 : res)
#endif
}

/*
 * commits.ts commitManifest: move the head only if it is still the one read
 * (generation g). On success the committer must not be fenced, and no
 * acknowledged commit may be lost.
 */
inline commit(cm) {
  d_step {
#ifdef NO_CAS
    ok = true;
#else
    ok = (head[cm] == g);
#endif
    if
    :: ok ->
       head[cm] = g + 1;
       assert(!fenced[_pid]);
       commits[cm]++;
       assert(head[cm] == commits[cm]);
       q = 1;
       do
       :: q < NP ->
          if
          :: q != _pid && WORKS(q, cm) && gone[q] -> fenced[q] = true
          :: else -> skip
          fi;
          q++
       :: else -> break
       od;
       q = 0
    :: else -> skip
    fi
  }
}

/*
 * push.ts pushModel under the lease: read the head, (upload), confirm,
 * commit; a lost race reads again, up to MAX_COMMITS attempts.
 */
inline push(pm, pk) {
  tries = 0;
  do
  :: tries < MAX_COMMITS ->
     tries++;
     maybe_scheduled_renewal(pk);
     g = head[pm];
#ifndef NO_CONFIRM
     confirm(pk);
     if
     :: res != 0 -> break                       /* LeaseLostError or DatastoreError */
     :: else -> skip
     fi;
#endif
     commit(pm);
     CRASH;
     if
     :: ok -> break
     :: else -> skip                            /* ConflictError: rebase, retry */
     fi
  :: else -> break
  od;
  tries = 0;
  g = 0;
  ok = false;
  res = 0
}

/*
 * Lease.release -> records.ts #release: delete the version we last wrote;
 * when that fails, re-read once: not ours -> nothing to release.
 */
inline release(lk) {
  d_step { inflight = 0; i = (mine[_pid] == 0 -> ATTEMPTS : 0) };
  do
  :: i < ATTEMPTS ->
     i++;
     if
     :: !known || i > 1 -> reread(lk)
     :: else -> skip
     fi;
     if
     :: !known -> break                         /* not ours: nothing to release */
     :: else -> skip
     fi;
     atomic {
       if
       :: rnonce[lk] == mine[_pid] && rren[lk] == myren ->
          rnonce[lk] = 0; rren[lk] = 0; rstale[lk] = false; break
       :: else -> skip
       fi
     }
  :: i >= ATTEMPTS -> break
  od;
  atomic {
    mine[_pid] = 0; myren = 0; known = false; lost[_pid] = false;
    gone[_pid] = false; forced[_pid] = false; fenced[_pid] = false; i = 0; res = 0
  }
}

/* LockManager#tryTake: a live record of our pid that no lease of ours holds is an orphan. */
inline take(tk) {
  try_acquire(tk);
  if
  :: res == 1 && OWNER(sn) == _pid -> force_release(tk, sn); try_acquire(tk)
  :: else -> skip
  fi;
  CRASH
}


/* Waiting: back off until an attempt would see a change, or give up at --lock-timeout. */
#ifdef LOCK_TIMEOUTS
#define GIVE_UP :: true -> goto out
#else
#define GIVE_UP
#endif

proctype Scoped(byte m) {
  byte a, n, sn, sr, i, res, myren, g, tries, q, inflight, tried;
  bool known, ok, retry;
  mykey[_pid] = m;
  {
    skip;
again:
    /* a retry first checks the global lock: inspect(global), free or stale */
    if
    :: !retry -> retry = true
    :: retry && !LIVE(GK) -> skip
    GIVE_UP
    fi;
    take(m);
    if
    :: res == 0 -> sn = 0
    :: res == 1 ->
       if
       :: rnonce[m] != sn || rstale[m] -> sn = 0; goto again
       GIVE_UP
       fi
    :: res == 2 -> sn = 0; goto again
    fi;
#ifndef NO_RECHECK
    /* the global lock, by a read sent after ours was taken (SharedRead): held? */
    if
    :: LIVE(GK) ->
#ifdef HOLD_AND_WAIT
       if
       :: !LIVE(GK) -> skip
       GIVE_UP
       fi
#else
       release(m);                              /* ours first, then back off */
       if
       :: !LIVE(GK) -> goto again
       GIVE_UP
       fi
#endif
    :: else -> skip
    fi;
#endif
    enter(m);
    push(m, m);
    WORKS(_pid, m) = false;
out:
    release(m)
  };
killed:
  atomic { dead[_pid] = true; finished++ }
}

proctype Global() {
  byte a, n, sn, sr, i, res, myren, g, tries, q, inflight, tried, j;
  bool known, ok;
  mykey[_pid] = GK;
  {
    skip;
again:
    take(GK);
    if
    :: res == 0 -> sn = 0
    :: res == 1 ->
       if
       :: rnonce[GK] != sn || rstale[GK] -> sn = 0; goto again
       GIVE_UP
       fi
    :: res == 2 -> sn = 0; goto again
    fi;
#ifndef NO_DRAIN
drain:
    /* lease.assertHeld(); listLocks: any live model lock? (a read per key) */
    if
    :: lost[_pid] -> goto out
    :: else -> skip
    fi;
    j = 0;
    do
    :: j < NM ->
       atomic {
         if
         :: LIVE(j) -> sn = rnonce[j]
         :: else -> j++
         fi
       };
       if
       :: sn != 0 -> break
       :: else -> skip
       fi
    :: else -> break
    od;
    if
    :: j < NM ->
       if
       :: rnonce[j] != sn || rstale[j] || lost[_pid] -> sn = 0; j = 0; goto drain
       GIVE_UP
       fi
    :: else -> j = 0
    fi;
#endif
    /* every model under the one lease; assertHeld before each */
    do
    :: j < NM ->
       if
       :: lost[_pid] -> skip
       :: else -> enter(j); push(j, GK); WORKS(_pid, j) = false
       fi;
       j++
    :: else -> j = 0; break
    od;
out:
    release(GK)
  };
killed:
  atomic { dead[_pid] = true; finished++ }
}

/*
 * Time: a record expires. A healthy holder's lease expires only within the
 * budget, and its own timer fires first (it counts from before it sent), so
 * it knows before anyone judges the record stale. Records of gone pids, of
 * orphans and of lost leases expire whenever: time always passes.
 */
#define UNHELD(k) \
  (dead[OWNER(rnonce[k])] || mine[OWNER(rnonce[k])] != rnonce[k] || lost[OWNER(rnonce[k])])
#define EXPIRABLE(k) (LIVE(k) && (UNHELD(k) || expire_budget > 0))
#define EXPIRE_KEY(k) \
  if \
  :: UNHELD(k) -> skip \
  :: else -> expire_budget--; lost[OWNER(rnonce[k])] = true; gone[OWNER(rnonce[k])] = true \
  fi; \
  rstale[k] = true

proctype Clock() {
end:
  do
  :: d_step { EXPIRABLE(0) -> EXPIRE_KEY(0) }
#if NM > 1
  :: d_step { EXPIRABLE(1) -> EXPIRE_KEY(1) }
#endif
  :: d_step { EXPIRABLE(GK) -> EXPIRE_KEY(GK) }
  od
}

/* "lock release --force KEY": inspect (note the nonce), then the nonce-checked delete. */
proctype Operator() {
  byte seen, k;
end:
  do
  :: atomic {
       force_budget > 0 && seen == 0 ->
       if
       :: k = 0
#if NM > 1
       :: k = 1
#endif
       :: k = GK
       fi;
       seen = rnonce[k];
       if
       :: seen != 0 -> force_budget--
       :: else -> k = 0
       fi
     }
  :: seen != 0 -> force_release(k, seen); seen = 0; k = 0
  od
}

init {
  byte c;
  atomic {
    do
    :: c < W0 -> run Scoped(0); c++
    :: else -> break
    od;
    c = 0;
    do
    :: c < GW -> run Global(); c++
    :: else -> break
    od;
    c = 0;
    do
    :: c < W1 -> run Scoped(1); c++
    :: else -> break
    od;
    c = 0;
    run Clock();
    run Operator()
  }
}

#ifdef LIVENESS
ltl terminates { <> (finished == WORKERS) }
#endif
