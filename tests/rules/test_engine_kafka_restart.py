"""After a restart, Kafka rules take up the open episodes their rebuild window does not reach, and rebuild the others with the same id."""

from __future__ import annotations

from timeline import at

from controller.domain import observations, transitions
from controller.rules import engine, seeding

FIRED = transitions.TransitionKind.FIRED
RESOLVED = transitions.TransitionKind.RESOLVED
KAFKA = frozenset({observations.SourceKind.KAFKA})
SEEDED = seeding.Outcome.SEEDED
REPLAYED = seeding.Outcome.REPLAYED

RULES = """\
groups:
  - name: hosts
    rules:
      - name: Hot
        source: kafka
        stream: temps
        match: labels.kind == 'temp'
        when: body.celsius > 80
        resource: host/{{ labels.host }}
      - name: Slow
        source: kafka
        stream: temps
        match: labels.kind == 'latency'
        when: body.ms > 500
        for: 30s
        resource: host/{{ labels.host }}
      - name: DiskFull
        source: kafka
        stream: temps
        match: labels.kind == 'disk'
        when: body.used > 95
        group_by: [mount]
        resource: host/{{ labels.host }}
      - name: JobFailed
        source: webhook
        match: labels.kind == 'job'
        when: body.status == 'failed'
        resource: job/{{ labels.job }}
"""


def temp(seconds, celsius, *, host="db1"):
    return observations.Observation(
        source=observations.SourceKind.KAFKA,
        stream="temps",
        at=at(seconds),
        labels={"kind": "temp", "host": host},
        body={"celsius": celsius},
    )


def latency(seconds, ms, *, host="db1"):
    return observations.Observation(
        source=observations.SourceKind.KAFKA,
        stream="temps",
        at=at(seconds),
        labels={"kind": "latency", "host": host},
        body={"ms": ms},
    )


def disk(seconds, used, *, mount, host="db1"):
    return observations.Observation(
        source=observations.SourceKind.KAFKA,
        stream="temps",
        at=at(seconds),
        labels={"kind": "disk", "host": host, "mount": mount},
        body={"used": used},
    )


def open_episode(fired: transitions.Transition) -> transitions.OpenEpisode:
    """What the resource workflow's memo tells of the episode ``fired`` started."""
    return transitions.OpenEpisode(
        rule=fired.rule,
        resource=fired.resource,
        episode=fired.episode,
        started_at=fired.started_at,
        groups=fired.groups,
    )


def first_run(make_rules, events):
    """The engine before the restart: the transitions ``events`` gave, in order."""
    return engine.Engine(make_rules(RULES)).observe_batch(events)


def restarted(make_rules, fired, *, replay, decided=None):
    """A new engine told of the open episodes ``fired`` started, then fed the rebuild window ``replay`` (its transitions are not sent)."""
    eng = engine.Engine(
        make_rules(RULES),
        on_seed=lambda outcome, episode: (decided if decided is not None else []).append(
            (outcome, episode.episode)
        ),
    )
    assert eng.expect([open_episode(t) for t in fired], sources=KAFKA) == {}
    eng.observe_batch(replay)
    return eng


def test_the_all_clear_after_a_restart_resolves_an_episode_older_than_the_window(make_rules):
    """A host hot since before the window re-read: the reading in the window starts nothing, the all-clear resolves the episode fired before the restart."""
    fired = first_run(make_rules, [temp(0, 95), temp(100, 96)])
    decided = []
    eng = restarted(make_rules, fired, replay=[temp(100, 96)], decided=decided)
    assert decided == [(SEEDED, fired[0].episode)]
    resolved = eng.observe(temp(120, 20))
    assert [(t.kind, t.episode, t.at) for t in resolved] == [(RESOLVED, fired[0].episode, at(120))]


def test_without_being_told_the_replay_starts_a_second_episode(make_rules):
    """The defect: an engine rebuilt from the window alone starts another episode, which the all-clear resolves instead."""
    fired = first_run(make_rules, [temp(0, 95), temp(100, 96)])
    eng = engine.Engine(make_rules(RULES))
    [replayed] = eng.observe_batch([temp(100, 96)])
    assert replayed.kind is FIRED
    assert replayed.episode != fired[0].episode
    [resolved] = eng.observe(temp(120, 20))
    assert resolved.episode == replayed.episode


def test_with_no_event_in_the_window_the_first_live_event_takes_the_episode_up(make_rules):
    """Nothing to replay: a repeated reading continues the episode and the all-clear resolves it."""
    fired = first_run(make_rules, [temp(0, 95)])
    eng = restarted(make_rules, fired, replay=[])
    assert eng.observe(temp(200, 97)) == []
    resolved = eng.observe(temp(210, 20))
    assert [(t.kind, t.episode) for t in resolved] == [(RESOLVED, fired[0].episode)]


def test_an_episode_the_window_reaches_is_rebuilt_with_the_same_id(make_rules):
    """The firing reading is the first the replay reads: the replay starts the episode again, with its id, and nothing else."""
    fired = first_run(make_rules, [temp(0, 20), temp(10, 95)])
    decided = []
    eng = restarted(make_rules, fired, replay=[temp(10, 95)], decided=decided)
    assert decided == [(REPLAYED, fired[0].episode)]
    assert eng.observe(temp(20, 96)) == []
    resolved = eng.observe(temp(30, 20))
    assert [(t.kind, t.episode) for t in resolved] == [(RESOLVED, fired[0].episode)]


def test_an_episode_the_replay_resolves_stays_resolved(make_rules):
    """The memo still shows an episode whose all-clear lies in the window: the replay resolves it, and a new failure starts a new episode."""
    fired = first_run(make_rules, [temp(0, 95), temp(100, 20)])
    eng = restarted(make_rules, fired[:1], replay=[temp(100, 20)])
    [again] = eng.observe(temp(150, 95))
    assert again.kind is FIRED
    assert again.episode != fired[0].episode


def test_a_for_episode_whose_pending_began_before_the_window_keeps_its_id(make_rules):
    """Latency high since 0 fired at 30; the window starts at 20: its reading at 30 continues the episode instead of pending anew and firing at 60."""
    fired = first_run(make_rules, [latency(0, 900), latency(30, 900)])
    assert [t.started_at for t in fired] == [at(30)]
    eng = restarted(make_rules, fired, replay=[latency(30, 900)])
    assert eng.observe(latency(60, 900)) == []
    assert eng.tick(at(90)) == []
    resolved = eng.observe(latency(100, 100))
    assert [(t.kind, t.episode) for t in resolved] == [(RESOLVED, fired[0].episode)]


def test_a_for_episode_whose_pending_the_window_reaches_is_rebuilt(make_rules):
    """The window reaches back to the reading that began the pending: the replay fires it again at 30, the same episode."""
    fired = first_run(make_rules, [latency(0, 900), latency(30, 900)])
    decided = []
    eng = restarted(make_rules, fired, replay=[latency(0, 900), latency(30, 900)], decided=decided)
    assert decided == [(REPLAYED, fired[0].episode)]
    resolved = eng.observe(latency(40, 100))
    assert [(t.kind, t.episode) for t in resolved] == [(RESOLVED, fired[0].episode)]


def test_a_group_by_episode_is_taken_up_with_its_conditions_by_any_event_of_its_resource(
    make_rules,
):
    """The first event after the restart is another mount's: the episode is taken up with the mount that started it, which the all-clear of that mount resolves."""
    fired = first_run(make_rules, [disk(0, 99, mount="/data")])
    eng = restarted(make_rules, fired, replay=[disk(100, 50, mount="/var")])
    resolved = eng.observe(disk(110, 40, mount="/data"))
    assert [(t.kind, t.episode) for t in resolved] == [(RESOLVED, fired[0].episode)]


def test_an_episode_no_event_of_this_engine_reaches_is_never_resolved_here(make_rules):
    """Another replica reads the host's partition: this engine hears nothing of it, so staleness never resolves an episode it does not own."""
    fired = first_run(make_rules, [temp(0, 95)])
    eng = restarted(make_rules, fired, replay=[temp(100, 95, host="other")])
    assert [t for t in eng.tick(at(3600)) if t.episode == fired[0].episode] == []
    assert [c.resource for c in eng.conditions()] == []


def test_episodes_decided_at_once_are_counted_and_others_wait(make_rules):
    """Of removed rules and of resources the engine knows nothing waits; webhook rules' episodes are another reader's and are not counted."""
    eng = engine.Engine(make_rules(RULES))
    [known] = eng.observe(temp(0, 95, host="known"))
    start = at(0)

    def episode(rule, resource):
        return transitions.OpenEpisode(
            rule=rule,
            resource=resource,
            episode=transitions.episode_id(rule=rule, resource=resource, started_at=start),
            started_at=start,
        )

    outcomes = eng.expect(
        [
            episode("Removed", "host/old"),
            episode("JobFailed", "job/backup"),
            open_episode(known),
            episode("Hot", "host/db1"),
        ],
        sources=KAFKA,
    )
    assert outcomes == {seeding.Outcome.UNKNOWN_RULE: 1, seeding.Outcome.KNOWN: 1}
    assert [t.episode for t in eng.observe(temp(10, 20))] == [episode("Hot", "host/db1").episode]


def test_a_rule_changed_by_a_reload_resolves_the_episodes_it_waited_for(make_rules):
    """A hot reload that changes a rule ends its open episodes; those still waited for are among them."""
    fired = first_run(make_rules, [temp(0, 95)])
    eng = restarted(make_rules, fired, replay=[temp(100, 95, host="other")])
    resolved = eng.replace_rules(make_rules(RULES.replace("> 80", "> 85")))
    mine = [(t.kind, t.episode) for t in resolved if t.resource == fired[0].resource]
    assert mine == [(RESOLVED, fired[0].episode)]
