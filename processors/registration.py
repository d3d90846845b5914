"""Job-seeker registration (R10.1): where a citizen's a-kasse and municipality come from.

Registration also tells the citizen's jobcentre and a-kasse (kinds ``jobseeker-registered``
and ``jobseeker-deregistered``): the jobcentre owns the job-seeker's effort and the a-kasse
pays its member's benefit, and both act on a (de)registration. The benefit system is not
told: it learns of benefit entitlement from the jobcentre, not from DFDG.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType

from processors.events import Event, JobseekerDeregistered, JobseekerRegistered
from processors.frozen import replace
from processors.model import CitizenState, Decision, Notice, Rejected, deterministic_id
from processors.reference import E301_CITIZEN_DECEASED

__all__ = ["HANDLERS", "on_jobseeker_deregistered", "on_jobseeker_registered"]

Handler = Callable[[CitizenState, Event, datetime], Decision]


def on_jobseeker_registered(state: CitizenState, event: Event, now: datetime) -> Decision:
    """R10.1: record a-kasse (``None`` = not a member; at most one), municipality, name and CPR.

    A new registration replaces the earlier a-kasse and municipality: the latest registration
    is the citizen's current relation. Name and CPR go to ``state.personal`` only.
    """
    assert isinstance(event, JobseekerRegistered)
    if event.event_id in state.fired:
        return Decision(state=state)
    if state.deceased_on is not None:
        reason = "job-seeker registration for a deceased citizen"
        return Decision(state=state, outputs=(Rejected(event.event_id, E301_CITIZEN_DECEASED, reason),))
    new_state = replace(
        state,
        personal=replace(state.personal, cpr=event.cpr, name=event.name),
        akasse=event.akasse,
        municipality=event.municipality,
        registered_jobseeker=True,
        fired=state.fired | {event.event_id},
    )
    notice = Notice(
        notice_id=deterministic_id("jobseeker-registered", state.citizen_key, event.event_id),
        kind="jobseeker-registered",
        cause_event_id=event.event_id,
        cause_type=type(event).__name__,
        details=MappingProxyType({
            "registration_date": event.registration_date.isoformat(),
            "benefit_category": event.benefit_category,
            "unemployment_degree": f"{event.unemployment_degree:g}",
        }),
        municipality=event.municipality,
    )
    return Decision(state=new_state, outputs=(notice,))


def on_jobseeker_deregistered(state: CitizenState, event: Event, now: datetime) -> Decision:
    """R10.1: the citizen is no longer a job seeker; a-kasse and municipality are kept.

    They stay the citizen's relations (R6.3 still needs them) until a new registration says
    otherwise. A deregistration of a citizen who is not registered changes and sends nothing.
    """
    assert isinstance(event, JobseekerDeregistered)
    if event.event_id in state.fired or not state.registered_jobseeker:
        return Decision(state=state)
    notice = Notice(
        notice_id=deterministic_id("jobseeker-deregistered", state.citizen_key, event.event_id),
        kind="jobseeker-deregistered",
        cause_event_id=event.event_id,
        cause_type=type(event).__name__,
        # The reason is not passed on: notification details carry no free text.
        details=MappingProxyType({"deregistration_date": event.deregistration_date.isoformat()}),
    )
    new_state = replace(state, registered_jobseeker=False, fired=state.fired | {event.event_id})
    return Decision(state=new_state, outputs=(notice,))


HANDLERS: Mapping[type[Event], Handler] = MappingProxyType({
    JobseekerRegistered: on_jobseeker_registered,
    JobseekerDeregistered: on_jobseeker_deregistered,
})
