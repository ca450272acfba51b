"""Text for the planted facts the demo's alert rules rely on: the Line 3 outage, the #ReliefFee
rumour with its copy-paste campaign and official rebuttals, and posts carrying fake PII.
"""

from __future__ import annotations

from phrasebook import PhraseGroup

RUMOUR_HASHTAG = "#ReliefFee"

OUTAGE: dict[str, PhraseGroup] = {
    "en": {
        "negative": (
            "Line 3 stopped dead between {place} and {place2}. {stuck}",
            "Stuck on Line 3 at {place} for {minutes} minutes, {no_info}.",
            "Line 3 down AGAIN. {consequence}",
            "Whole Line 3 is out and {no_info}. {consequence}",
            "Thousands of people stranded at {place} because Line 3 is down. Where are the buses?",
            "Line 3 outage: the replacement buses at {place} are a joke, queue round the block.",
            "Evacuated from a Line 3 train in the tunnel near {place}. {stuck}",
        ),
        "neutral": (
            "Line 3 suspended between {place} and {place2}, replacement buses from {place3}.",
            "Is Line 3 running yet? Need to get to {place}.",
            "Any estimate for when Line 3 is back? Trying to plan the trip home from {place}.",
        ),
        "positive": (
            "Thanks to the staff handing out water at {place} during the Line 3 outage.",
            "The bus drivers covering Line 3 today are heroes, calm and kind at {place}.",
        ),
        "stuck": ("Doors closed, no air.", "Lights off, no announcements.", "Been here forever.",
                  "Kids crying, people panicking."),
        "no_info": ("no information at all", "staff have no idea either", "the app still says good service",
                    "not a single announcement"),
        "consequence": ("Missed my shift.", "How do I get my kids from school now?", "Walking home, 5 km.",
                        "This city deserves better.", "Pay a fortune for this?"),
        "hashtag": ("#Line3", "#Line3", "#Line3", "#Line3 #PortAlder", "#PortAlderTransit", ""),
        "outburst": ("I am FURIOUS.", "Absolutely livid right now.", "This is outrageous!",
                     "Sick and tired of this garbage service!", "Unacceptable. Utterly unacceptable!",
                     "I'm so angry I could scream.", "Enough is enough, I'm fuming!"),
        "abuse": ("Port Alder Transit is run by incompetent idiots.", "What a bunch of useless morons at Transit.",
                  "Whoever runs Line 3 is a total moron.", "Damn clowns, every single one of them at Transit.",
                  "Shut up with your 'sorry for the inconvenience', you pathetic idiots."),
    },
    "es": {
        "negative": (
            "La Línea 3 parada entre {place} y {place2}. {stuck}",
            "Atrapada en la Línea 3 en {place} desde hace {minutes} minutos, {no_info}.",
            "La Línea 3 caída OTRA VEZ. {consequence}",
            "Toda la Línea 3 sin servicio y {no_info}. {consequence}",
            "Miles de personas tiradas en {place} por la avería de la Línea 3. ¿Y los autobuses?",
        ),
        "neutral": (
            "Línea 3 interrumpida entre {place} y {place2}, autobuses desde {place3}.",
            "¿Ya funciona la Línea 3? Tengo que llegar a {place}.",
        ),
        "positive": ("Gracias al personal que reparte agua en {place} durante la avería de la Línea 3.",),
        "stuck": ("Puertas cerradas, sin aire.", "Luces apagadas, ni un aviso.", "Llevamos una eternidad."),
        "no_info": ("sin ninguna información", "el personal tampoco sabe nada", "la app dice servicio normal"),
        "consequence": ("Perdí mi turno.", "¿Cómo recojo ahora a los niños?", "A casa andando, 5 km."),
        "hashtag": ("#Line3", "#Line3", "#Line3 #PortAlder", "#PortAlderTransit", ""),
        "outburst": ("¡Estoy FURIOSA!", "¡Es indignante!", "¡Qué vergüenza, estoy harto!",
                     "¡Me hierve la sangre!", "¡Inaceptable, totalmente inaceptable!"),
        "abuse": ("Los de Transit son una panda de inútiles.", "¡Idiotas incompetentes!",
                  "El que dirige la Línea 3 es un imbécil."),
    },
    "fr": {
        "negative": (
            "Ligne 3 à l'arrêt entre {place} et {place2}. {stuck}",
            "Coincée dans la ligne 3 à {place} depuis {minutes} minutes, {no_info}.",
            "Ligne 3 en panne ENCORE. {consequence}",
            "Toute la ligne 3 est coupée et {no_info}. {consequence}",
            "Des milliers de gens bloqués à {place} à cause de la panne de la ligne 3. Où sont les bus ?",
        ),
        "neutral": (
            "Ligne 3 interrompue entre {place} et {place2}, bus de remplacement depuis {place3}.",
            "La ligne 3 roule-t-elle de nouveau ? Je dois aller à {place}.",
        ),
        "positive": ("Merci aux agents qui distribuent de l'eau à {place} pendant la panne de la ligne 3.",),
        "stuck": ("Portes fermées, pas d'air.", "Lumières éteintes, aucune annonce.", "Ça dure depuis des lustres."),
        "no_info": ("aucune information", "le personnel n'en sait rien", "l'appli indique trafic normal"),
        "consequence": ("J'ai raté mon service.", "Comment je récupère les enfants ?", "Retour à pied, 5 km."),
        "hashtag": ("#Line3", "#Line3", "#Line3 #PortAlder", "#PortAlderTransit", ""),
        "outburst": ("Je suis FURIEUX.", "C'est scandaleux !", "J'en ai ras le bol de ce service minable !",
                     "Je suis hors de moi !", "Inadmissible, totalement inadmissible !"),
        "abuse": ("Bande d'incapables à la direction des transports.", "Quels abrutis, ces gens de Transit !",
                  "Celui qui gère la ligne 3 est un crétin."),
    },
}

RUMOUR: dict[str, PhraseGroup] = {
    "en": {
        "claim": (
            "{relay} relief payments will be cancelled unless you pay a {fee} processing fee {deadline}.",
            "Is it true we have to pay a {fee} fee or the storm relief payment gets cancelled?",
            "{relay} you must pay a {fee} processing fee {deadline} or lose your relief payment. {reaction}",
            "So now they want a {fee} 'processing fee' or they cancel our relief money?! {reaction}",
            "Warning everyone: relief payments CANCELLED {deadline} if the {fee} fee isn't paid. {reaction}",
        ),
        "relay": ("My neighbour got a text saying", "Heard at the shelter that", "My cousin says",
                  "A message going around says", "Someone from the council told my mum"),
        "fee": ("$25", "$30", "$49", "$19.99", "$25"),
        "deadline": ("by Friday", "before the weekend", "within 48 hours", "by midnight tomorrow"),
        "reaction": ("Disgusting.", "Share this!", "How are poor families supposed to pay?", "Unreal.",
                     "Spread the word."),
    },
    "es": {
        "claim": (
            "{relay} que cancelarán las ayudas si no pagas una tasa de tramitación de {fee} {deadline}.",
            "¿Es verdad que hay que pagar {fee} o cancelan la ayuda por la tormenta?",
            "¡Ojo! Ayudas CANCELADAS {deadline} si no se paga la tasa de {fee}. {reaction}",
        ),
        "relay": ("A mi vecina le llegó un mensaje diciendo", "Dicen en el refugio", "Mi primo dice"),
        "fee": ("25 $", "30 $", "49 $"),
        "deadline": ("antes del viernes", "en 48 horas", "antes del fin de semana"),
        "reaction": ("¡Compartid!", "¿Cómo van a pagar las familias pobres?", "Una vergüenza."),
    },
    "fr": {
        "claim": (
            "{relay} que les aides seront annulées si on ne paie pas des frais de dossier de {fee} {deadline}.",
            "C'est vrai qu'il faut payer {fee} sinon l'aide après la tempête est annulée ?",
            "Attention : aides ANNULÉES {deadline} si les frais de {fee} ne sont pas payés. {reaction}",
        ),
        "relay": ("Ma voisine a reçu un SMS disant", "On dit au refuge", "Mon cousin affirme"),
        "fee": ("25 $", "30 $", "49 $"),
        "deadline": ("avant vendredi", "sous 48 heures", "avant le week-end"),
        "reaction": ("Partagez !", "Comment les familles pauvres vont payer ?", "Scandaleux."),
    },
}

CAMPAIGN: dict[str, str] = {
    "en": "URGENT: all storm relief payments will be CANCELLED on Friday unless you pay a $25 processing "
    "fee. Pay now to keep your payment! Share before they delete this",
    "es": "URGENTE: todas las ayudas por la tormenta serán CANCELADAS el viernes si no pagas una tasa de "
    "tramitación de 25 $. ¡Paga ya para no perder tu ayuda! Compártelo antes de que lo borren",
    "fr": "URGENT : toutes les aides après la tempête seront ANNULÉES vendredi si vous ne payez pas des "
    "frais de dossier de 25 $. Payez maintenant pour garder votre aide ! Partagez avant la suppression",
}
"""The copy-paste message; copies differ only by a prefix or trailing punctuation."""

CAMPAIGN_PREFIXES = ("", "", "", "RT ", "Copied: ", ">> ")
CAMPAIGN_SUFFIXES = ("", "", "!!", "!!!", " 🙏", " ⚠️")

REBUTTALS: dict[str, tuple[str, ...]] = {
    "en": (
        "There is NO processing fee for storm relief payments. Port Alder Emergency Management will never "
        "ask you to pay to receive relief. Please report these messages.",
        "Fact check: relief payments are not being cancelled. Anyone asking for a fee is a scammer.",
        "Reminder: relief is free. Do not send money or card details to anyone claiming otherwise.",
    ),
    "es": ("NO existe ninguna tasa de tramitación para las ayudas. Nunca le pediremos dinero. Denuncie "
           "estos mensajes.",),
    "fr": ("Il n'y a AUCUN frais de dossier pour les aides après la tempête. Nous ne demanderons jamais "
           "d'argent. Signalez ces messages.",),
}

PII_POSTS: tuple[tuple[str, str, str, str], ...] = (
    ("passport-office", "en", "webhook",
     "Still waiting on my renewal, nobody answers. Email me at jordan.sample@example.com or call "
     "+1 555 0142."),
    ("passport-office", "fr", "webhook",
     "Mon dossier est bloqué depuis six semaines, écrivez-moi à camille.exemple@example.com ou au "
     "+1 555 0187."),
    ("passport-office", "en", "reddit",
     "They charged my card 4111 1111 1111 1111 twice for one renewal. Refund please."),
    ("city-transit", "en", "webhook",
     "Lost a blue wallet on the 12 bus near Millbrook. If found please call +1 555 0123 or write to "
     "alex.placeholder@example.com."),
    ("city-transit", "en", "webhook",
     "The ticket machine at Old Market charged 4111-1111-1111-1111 three times. Contact me at "
     "+1 555 0199."),
    ("city-transit", "es", "webhook",
     "Me dejé la mochila en el tranvía T1. Mi correo es maria.ejemplo@example.com, teléfono +1 555 0161."),
    ("emergency-mgmt", "en", "webhook",
     "Need help with my relief application, case still open. Reach me at sam.testperson@example.com "
     "or +1-555-0177."),
    ("emergency-mgmt", "es", "webhook",
     "Necesito ayuda con la solicitud, mi correo es luis.prueba@example.com y mi teléfono +1 555 0134."),
    ("emergency-mgmt", "fr", "webhook",
     "Toujours pas de réponse pour notre demande d'aide. Contact : dominique.essai@example.com."),
)
"""(tenant, language, channel, text) of the posts that carry fake e-mails, phones or test card numbers."""
