"""What each piece of sentence material is about: the ground truth of the example posts' topics.

Every template (and the few fillers whose subject differs from their template's) is labelled with
the agency topics it is about, in the topic names of examples/topics/<tenant>.yaml. A post is about
the union of the topics of the pieces it was built from; asides, openers and closers are about the
writer, not a service, and carry none. SERVICES gives the coarser public service of each agency, in
the names of the shipped default topics (services/common/relevance/default_topics.yaml).
"""

from __future__ import annotations

SERVICES = {"city-transit": "public_transit", "passport-office": "passports", "emergency-mgmt": "emergencies"}

_RELIABILITY = "service_reliability"
_FARES = "fares_and_tickets"
_STATIONS = "stations_and_accessibility"
_STAFF = "staff_and_conduct"
_TIMETABLES = "timetables_and_service_changes"

_PROCESSING = "processing_times"
_APPOINTMENTS = "appointments_and_offices"
_FORMS = "forms_and_photos"
_FEES = "fees_and_payments"
_LOST = "lost_and_stolen"
_SUPPORT = "helpline_and_staff"

_ALERTS = "emergency_alerts"
_SHELTERS = "shelters_and_evacuation"
_UTILITIES = "power_and_water"
_RELIEF = "relief_payments"
_DAMAGE = "storm_damage_and_response"

PIECE_TOPICS: dict[str, dict[str, tuple[str, ...]]] = {
    "city-transit": {
        # English
        "{route} is {late_state} again at {place}.": (_RELIABILITY,),
        "Waited {minutes} minutes for {route} at {place} and {bad_outcome}.": (_RELIABILITY,),
        "Why is {route} always {bad_state} during {peak}? {consequence}": (_RELIABILITY,),
        "The {facility} at {place} station has been broken for {duration}.": (_STATIONS,),
        "Fares went up in January but {route} is as {bad_state} as ever. {consequence}": (_FARES, _RELIABILITY),
        "{route} at {place}: {bad_outcome}, no announcement, no staff anywhere.": (_RELIABILITY,),
        "The ticket machine at {place} {machine_problem}. {consequence}": (_FARES,),
        "Driver on {route} closed the doors on a {rider} at {place}. Not okay.": (_STAFF,),
        "Does anyone know if {route} runs on {service_day}?": (_TIMETABLES,),
        "Is {place} station step-free yet? Planning a trip with a {luggage}.": (_STATIONS,),
        "{route} is on a {schedule_change} this week.": (_TIMETABLES,),
        "What's the cheapest fare from {place} to {place2}?": (_FARES,),
        "Took {route} from {place} to {place2} today, about {minutes} minutes.": (_TIMETABLES,),
        "When does the new {novelty} start? Saw a poster at {place}.": (),
        "Can you bring a {luggage} on {route} during {peak}?": (_STATIONS,),
        "Shout-out to the {staff} on {route} who {kind_act}.": (_STAFF,),
        "{route} was {good_state} this morning, {minutes} minutes from {place} to {place2}.": (_RELIABILITY,),
        "The new {facility} at {place} is {good_verdict}.": (_STATIONS,),
        "{route} has been {good_state} all week.": (_RELIABILITY,),
        "Really like the {novelty}, it makes the commute from {place} {easier}.": (),
        "Lost my bag on {route} and the {staff} at {place} had it waiting for me.": (_STAFF,),
        "contactless fare cap": (_FARES,),
        "night tram": (_TIMETABLES,),
        "real-time arrivals app": (_TIMETABLES,),
        "quiet carriage": (_TIMETABLES,),
        "weekly pass": (_FARES,),
        # Spanish
        "{route} vuelve a llegar {late_state} a {place}.": (_RELIABILITY,),
        "Esperé {minutes} minutos en {place} por {route} y {bad_outcome}.": (_RELIABILITY,),
        "¿Por qué {route} va siempre {bad_state} en {peak}? {consequence}": (_RELIABILITY,),
        "El {facility} de la estación {place} lleva roto {duration}.": (_STATIONS,),
        "Subieron las tarifas y {route} sigue igual de {bad_state}. {consequence}": (_FARES, _RELIABILITY),
        "La máquina de billetes de {place} {machine_problem}. {consequence}": (_FARES,),
        "¿Alguien sabe si {route} funciona {service_day}?": (_TIMETABLES,),
        "¿La estación {place} ya es accesible? Voy con {luggage}.": (_STATIONS,),
        "{route} tiene {schedule_change} esta semana.": (_TIMETABLES,),
        "¿Cuánto cuesta el billete de {place} a {place2}?": (_FARES,),
        "Hoy fui en {route} de {place} a {place2}, unos {minutes} minutos.": (_TIMETABLES,),
        "¿Cuándo empieza {novelty}? Vi un cartel en {place}.": (),
        "Gracias al {staff} que {kind_act}, en {route}.": (_STAFF,),
        "{route} iba {good_state} esta mañana, {minutes} minutos de {place} a {place2}.": (_RELIABILITY,),
        "El nuevo {facility} de {place} es {good_verdict}.": (_STATIONS,),
        "{route} ha ido {good_state} toda la semana.": (_RELIABILITY,),
        "Me encanta {novelty}, el trayecto desde {place} es {easier}.": (),
        "el tope de tarifa sin contacto": (_FARES,),
        "el tranvía nocturno": (_TIMETABLES,),
        "la app de llegadas en tiempo real": (_TIMETABLES,),
        "el abono semanal": (_FARES,),
        # French
        "{route} est encore {late_state} à {place}.": (_RELIABILITY,),
        "J'ai attendu {route} {minutes} minutes à {place} et {bad_outcome}.": (_RELIABILITY,),
        "Pourquoi {route} est toujours {bad_state} aux {peak} ? {consequence}": (_RELIABILITY,),
        "L'{facility} de la station {place} est en panne depuis {duration}.": (_STATIONS,),
        "Les tarifs ont augmenté mais {route} reste aussi {bad_state}. {consequence}": (_FARES, _RELIABILITY),
        "Le distributeur de {place} {machine_problem}. {consequence}": (_FARES,),
        "Quelqu'un sait si {route} circule {service_day} ?": (_TIMETABLES,),
        "La station {place} est-elle accessible ? Je voyage avec {luggage}.": (_STATIONS,),
        "{route} a {schedule_change} cette semaine.": (_TIMETABLES,),
        "Combien coûte le trajet de {place} à {place2} ?": (_FARES,),
        "Pris {route} de {place} à {place2} aujourd'hui, environ {minutes} minutes.": (_TIMETABLES,),
        "Quand commence {novelty} ? J'ai vu une affiche à {place}.": (),
        "Merci au {staff} qui {kind_act}, dans {route}.": (_STAFF,),
        "{route} était {good_state} ce matin, {minutes} minutes de {place} à {place2}.": (_RELIABILITY,),
        "Le nouvel {facility} de {place} est {good_verdict}.": (_STATIONS,),
        "{route} a été {good_state} toute la semaine.": (_RELIABILITY,),
        "J'adore {novelty}, le trajet depuis {place} est {easier}.": (),
        "le plafond tarifaire sans contact": (_FARES,),
        "le tram de nuit": (_TIMETABLES,),
        "l'appli des passages en temps réel": (_TIMETABLES,),
        "le forfait hebdomadaire": (_FARES,),
        # The Line 3 outage (planted): every post is about the disruption, some also about staff.
        "Line 3 stopped dead between {place} and {place2}. {stuck}": (_RELIABILITY,),
        "Stuck on Line 3 at {place} for {minutes} minutes, {no_info}.": (_RELIABILITY,),
        "Line 3 down AGAIN. {consequence}": (_RELIABILITY,),
        "Whole Line 3 is out and {no_info}. {consequence}": (_RELIABILITY,),
        "Thousands of people stranded at {place} because Line 3 is down. Where are the buses?": (_RELIABILITY,),
        "Line 3 outage: the replacement buses at {place} are a joke, queue round the block.": (_RELIABILITY,),
        "Evacuated from a Line 3 train in the tunnel near {place}. {stuck}": (_RELIABILITY,),
        "Line 3 suspended between {place} and {place2}, replacement buses from {place3}.": (_RELIABILITY,),
        "Is Line 3 running yet? Need to get to {place}.": (_RELIABILITY,),
        "Any estimate for when Line 3 is back? Trying to plan the trip home from {place}.": (_RELIABILITY,),
        "Thanks to the staff handing out water at {place} during the Line 3 outage.": (_RELIABILITY, _STAFF),
        "The bus drivers covering Line 3 today are heroes, calm and kind at {place}.": (_RELIABILITY, _STAFF),
        "La Línea 3 parada entre {place} y {place2}. {stuck}": (_RELIABILITY,),
        "Atrapada en la Línea 3 en {place} desde hace {minutes} minutos, {no_info}.": (_RELIABILITY,),
        "La Línea 3 caída OTRA VEZ. {consequence}": (_RELIABILITY,),
        "Toda la Línea 3 sin servicio y {no_info}. {consequence}": (_RELIABILITY,),
        "Miles de personas tiradas en {place} por la avería de la Línea 3. ¿Y los autobuses?": (_RELIABILITY,),
        "Línea 3 interrumpida entre {place} y {place2}, autobuses desde {place3}.": (_RELIABILITY,),
        "¿Ya funciona la Línea 3? Tengo que llegar a {place}.": (_RELIABILITY,),
        "Gracias al personal que reparte agua en {place} durante la avería de la Línea 3.": (_RELIABILITY, _STAFF),
        "Ligne 3 à l'arrêt entre {place} et {place2}. {stuck}": (_RELIABILITY,),
        "Coincée dans la ligne 3 à {place} depuis {minutes} minutes, {no_info}.": (_RELIABILITY,),
        "Ligne 3 en panne ENCORE. {consequence}": (_RELIABILITY,),
        "Toute la ligne 3 est coupée et {no_info}. {consequence}": (_RELIABILITY,),
        "Des milliers de gens bloqués à {place} à cause de la panne de la ligne 3. Où sont les bus ?":
            (_RELIABILITY,),
        "Ligne 3 interrompue entre {place} et {place2}, bus de remplacement depuis {place3}.": (_RELIABILITY,),
        "La ligne 3 roule-t-elle de nouveau ? Je dois aller à {place}.": (_RELIABILITY,),
        "Merci aux agents qui distribuent de l'eau à {place} pendant la panne de la ligne 3.":
            (_RELIABILITY, _STAFF),
    },
    "passport-office": {
        "Applied for my renewal {weeks} weeks ago and still nothing. I fly for {trip} in {days} days.":
            (_PROCESSING,),
        "Queued for {queue_time} at {office} and {bad_outcome}.": (_APPOINTMENTS,),
        "{paper_problem} {consequence}": (),
        "No appointments at {office} for {weeks} weeks. How is anyone supposed to travel?": (_APPOINTMENTS,),
        "Paid {express_fee} for express processing and it's been {weeks} weeks since {milestone}.":
            (_FEES, _PROCESSING),
        "The passport helpline put me on hold for {queue_time} and then hung up.": (_SUPPORT,),
        "Third time my child's application came back because of {photo_issue}.": (_FORMS,),
        "How long is {application} taking right now? {applied_when}.": (_PROCESSING,),
        "Does {office} take walk-ins {when_visit}, or only appointments?": (_APPOINTMENTS,),
        "Can I {task} online or do I have to go to {office}?": (_FORMS,),
        "What are the photo rules for {photo_subject} now? Worried about {photo_issue}.": (_FORMS,),
        "Reminder to check your passport expiry date before booking {trip}.": (_PROCESSING,),
        "Is the {weeks}-week processing estimate on the website accurate?": (_PROCESSING,),
        "Do I need to send the old passport back when renewing by mail?": (_FORMS,),
        "Renewed online and the new passport arrived in {short_time}.": (_PROCESSING,),
        "The staff at {office} were {kind} today. In and out in {minutes} minutes.": (_SUPPORT, _APPOINTMENTS),
        "Got an urgent appointment for {trip} and they sorted it the same day.": (_APPOINTMENTS,),
        "The new online tracker actually works, I could see every step.": (_PROCESSING,),
        "Lost my passport abroad and the consular team was {kind}.": (_LOST,),
        "Photo booth at {office} fixed, and the clerk even checked my form for mistakes.": (_FORMS,),
        "My photo got rejected for shadows that aren't there.": (_FORMS,),
        "The online form crashed at the payment step, twice.": (_FORMS, _FEES),
        "They lost my birth certificate.": (_FORMS,),
        "The tracking page has said 'in progress' for {weeks} weeks.": (_PROCESSING,),
        "The appointment system shows nothing free until March.": (_APPOINTMENTS,),
        "Pedí la renovación hace {weeks} semanas y nada. Viajo para {trip} en {days} días.": (_PROCESSING,),
        "Hice cola {queue_time} en {office} y {bad_outcome}.": (_APPOINTMENTS,),
        "No hay citas en {office} hasta dentro de {weeks} semanas. ¿Cómo vamos a viajar?": (_APPOINTMENTS,),
        "Pagué el servicio urgente y ya van {weeks} semanas.": (_FEES, _PROCESSING),
        "El teléfono de pasaportes me tuvo en espera {queue_time} y luego colgó.": (_SUPPORT,),
        "¿Cuánto tarda ahora la renovación normal? La pedí hace {weeks} semanas.": (_PROCESSING,),
        "¿En {office} atienden sin cita?": (_APPOINTMENTS,),
        "¿Se puede renovar el pasaporte de un niño en línea o hay que ir a {office}?": (_FORMS,),
        "¿Cuáles son las normas de la foto? Me preocupa {photo_issue}.": (_FORMS,),
        "Recordad revisar la caducidad del pasaporte antes de reservar {trip}.": (_PROCESSING,),
        "Renové en línea y el pasaporte nuevo llegó en {short_time}.": (_PROCESSING,),
        "El personal de {office} fue {kind} hoy. Entré y salí en {minutes} minutos.": (_SUPPORT, _APPOINTMENTS),
        "Conseguí una cita urgente para {trip} y lo resolvieron el mismo día.": (_APPOINTMENTS,),
        "El nuevo seguimiento en línea funciona de verdad.": (_PROCESSING,),
        "Perdí el pasaporte en el extranjero y el consulado fue {kind}.": (_LOST,),
        "Me rechazaron la foto por sombras que no existen.": (_FORMS,),
        "El formulario en línea falla en el pago, dos veces.": (_FORMS, _FEES),
        "Perdieron mi partida de nacimiento.": (_FORMS,),
        "El seguimiento dice 'en trámite' desde hace {weeks} semanas.": (_PROCESSING,),
        "Demande de renouvellement il y a {weeks} semaines et toujours rien. Je pars pour {trip} dans {days} "
        "jours.": (_PROCESSING,),
        "J'ai fait la queue {queue_time} {office} et {bad_outcome}.": (_APPOINTMENTS,),
        "Aucun rendez-vous {office} avant {weeks} semaines. Comment voyager ?": (_APPOINTMENTS,),
        "J'ai payé le service express et ça fait {weeks} semaines.": (_FEES, _PROCESSING),
        "La ligne d'info passeports m'a mis en attente {queue_time} puis a raccroché.": (_SUPPORT,),
        "Quel est le délai actuel pour un renouvellement ? Demande faite il y a {weeks} semaines.": (_PROCESSING,),
        "Peut-on venir sans rendez-vous {office} ?": (_APPOINTMENTS,),
        "Peut-on renouveler le passeport d'un enfant en ligne ou faut-il aller {office} ?": (_FORMS,),
        "Quelles sont les règles pour la photo ? J'ai peur pour {photo_issue}.": (_FORMS,),
        "Pensez à vérifier la date d'expiration de votre passeport avant de réserver {trip}.": (_PROCESSING,),
        "Renouvelé en ligne, le nouveau passeport est arrivé en {short_time}.": (_PROCESSING,),
        "Le personnel {office} a été {kind} aujourd'hui. Dix minutes en tout.": (_SUPPORT, _APPOINTMENTS),
        "Rendez-vous urgent obtenu pour {trip}, réglé le jour même.": (_APPOINTMENTS,),
        "Le nouveau suivi en ligne fonctionne vraiment bien.": (_PROCESSING,),
        "Passeport perdu à l'étranger et le consulat a été {kind}.": (_LOST,),
        "Ma photo a été refusée pour des ombres imaginaires.": (_FORMS,),
        "Le formulaire en ligne plante au moment du paiement.": (_FORMS, _FEES),
        "Ils ont perdu mon acte de naissance.": (_FORMS,),
        "Le suivi indique « en cours » depuis {weeks} semaines.": (_PROCESSING,),
    },
    "emergency-mgmt": {
        "No alert on my phone about {hazard} until water was already in {area}.": (_ALERTS, _DAMAGE),
        "Called the emergency info line three times about {hazard}, nobody picked up.": (_ALERTS,),
        "The shelter at {shelter} ran out of {supply} by {clock}.": (_SHELTERS,),
        "Still no power in {area} after {outage}. When is someone coming?": (_UTILITIES,),
        "The evacuation route through {area} was blocked and nobody redirected us.": (_SHELTERS,),
        "Relief application portal keeps timing out. {consequence}": (_RELIEF,),
        "Sandbags in {area} were gone by {clock} and no more were delivered.": (_DAMAGE,),
        "Is the shelter at {shelter} accepting {guests}?": (_SHELTERS,),
        "Reminder: the siren test in {area} is at noon on {weekday}.": (_ALERTS,),
        "Where do I pick up sandbags near {area} {when_pick}?": (_DAMAGE,),
        "Does the relief payment application need {proof}?": (_RELIEF,),
        "Road closures in {area} because of {hazard}, plan another route.": (_SHELTERS,),
        "What number do I call for {damage} that isn't an emergency?": (_DAMAGE,),
        "Boil-water notice for {area}: does it cover {street}?": (_UTILITIES,),
        "Huge thanks to the volunteers at {shelter}.": (_SHELTERS,),
        "Crews restored power in {area} faster than expected.": (_UTILITIES,),
        "The text alert about {hazard} came right on time, we left early.": (_ALERTS,),
        "My relief payment arrived today, the process was {smooth}.": (_RELIEF,),
        "Firefighters in {area} were incredible last night.": (_DAMAGE,),
        "Clear, calm updates from emergency management all through {hazard}.": (_ALERTS,),
        "Ninguna alerta en el móvil sobre {hazard} hasta que el agua ya estaba en {area}.": (_ALERTS, _DAMAGE),
        "Llamé tres veces a la línea de emergencias por {hazard} y nadie contestó.": (_ALERTS,),
        "El refugio {shelter} se quedó sin {supply} a las {clock}.": (_SHELTERS,),
        "Seguimos sin luz en {area} después de {outage}. ¿Cuándo viene alguien?": (_UTILITIES,),
        "La ruta de evacuación por {area} estaba cortada y nadie nos desvió.": (_SHELTERS,),
        "La web de solicitud de ayudas no deja de fallar. {consequence}": (_RELIEF,),
        "¿El refugio {shelter} acepta mascotas?": (_SHELTERS,),
        "Recordatorio: la prueba de sirenas en {area} es el {weekday} a mediodía.": (_ALERTS,),
        "¿Dónde se recogen sacos de arena cerca de {area}?": (_DAMAGE,),
        "¿La solicitud de ayuda necesita justificante de domicilio?": (_RELIEF,),
        "Calles cortadas en {area} por {hazard}, busquen otra ruta.": (_SHELTERS,),
        "Mil gracias a los voluntarios {shelter}.": (_SHELTERS,),
        "Los equipos devolvieron la luz a {area} antes de lo previsto.": (_UTILITIES,),
        "La alerta por {hazard} llegó a tiempo y salimos antes.": (_ALERTS,),
        "Hoy cobré la ayuda, el trámite fue {smooth}.": (_RELIEF,),
        "Los bomberos en {area} estuvieron increíbles anoche.": (_DAMAGE,),
        "Aucune alerte sur mon téléphone pour {hazard} avant que l'eau n'arrive à {area}.": (_ALERTS, _DAMAGE),
        "J'ai appelé trois fois la ligne d'urgence pour {hazard}, personne n'a répondu.": (_ALERTS,),
        "Le refuge {shelter} n'avait plus de {supply} à {clock}.": (_SHELTERS,),
        "Toujours pas d'électricité à {area} après {outage}. Quand quelqu'un va venir ?": (_UTILITIES,),
        "La route d'évacuation par {area} était bloquée et personne ne nous a redirigés.": (_SHELTERS,),
        "Le portail des demandes d'aide plante sans arrêt. {consequence}": (_RELIEF,),
        "Le refuge {shelter} accepte-t-il les animaux ?": (_SHELTERS,),
        "Rappel : essai des sirènes à {area} {weekday} à midi.": (_ALERTS,),
        "Où récupérer des sacs de sable près de {area} ?": (_DAMAGE,),
        "Faut-il un justificatif de domicile pour la demande d'aide ?": (_RELIEF,),
        "Routes fermées à {area} à cause de {hazard}, prévoyez un autre itinéraire.": (_SHELTERS,),
        "Un immense merci aux bénévoles {shelter}.": (_SHELTERS,),
        "Les équipes ont rétabli le courant à {area} plus vite que prévu.": (_UTILITIES,),
        "L'alerte pour {hazard} est arrivée à temps, nous sommes partis tôt.": (_ALERTS,),
        "Mon aide est arrivée aujourd'hui, la démarche a été {smooth}.": (_RELIEF,),
        "Les pompiers de {area} ont été formidables cette nuit.": (_DAMAGE,),
    },
}

# Posts written whole (not from templates) in planted.py: the rumour, its rebuttals, the PII posts.
RUMOUR_TOPICS = (_RELIEF,)
PII_TOPICS = {
    "Still waiting on my renewal": (_PROCESSING,),
    "Mon dossier est bloqué": (_PROCESSING,),
    "They charged my card": (_FEES,),
    "Lost a blue wallet": (_STAFF,),
    "The ticket machine at Old Market": (_FARES,),
    "Me dejé la mochila": (_STAFF,),
    "Need help with my relief application": (_RELIEF,),
    "Necesito ayuda con la solicitud": (_RELIEF,),
    "Toujours pas de réponse pour notre demande d'aide": (_RELIEF,),
}


def topics_of(tenant: str, pieces: list[str]) -> tuple[str, ...]:
    """The agency topics of a post built from these templates and fillers, sorted."""
    labels = PIECE_TOPICS[tenant]
    return tuple(sorted({topic for piece in pieces for topic in labels.get(piece, ())}))


def pii_topics(text: str) -> tuple[str, ...]:
    return next(topics for opening, topics in PII_TOPICS.items() if text.startswith(opening))
