{#-
    The shopper an event belongs to: 'user:<user_id>' when signed in (one actor across
    devices), else 'guest:<session_id>' (one actor per producer session; the event's own
    id when the producer sent no session). The one definition: int_events_sessionized
    numbers sessions per actor_key and fct_sessions picks the actors to recompute by it,
    so two copies that drifted apart would silently stop recomputing some actors.
-#}
{% macro actor_key(user_id='user_id', session_id='session_id', event_id='event_id') -%}
    coalesce('user:' || {{ user_id }}, 'guest:' || coalesce({{ session_id }}, {{ event_id }}))
{%- endmacro %}
