# Les pages des préférences de notification et de désabonnement.

prefs-page-title = Préférences de notification
prefs-choose = Choisissez les messages que vous recevez au sujet des rendez-vous disponibles.
prefs-saved = Vos préférences sont enregistrées.
prefs-confirm-unsubscribe = Ne plus recevoir d’e-mails sur les rendez-vous disponibles ?
prefs-already-unsubscribed = Vous ne recevez pas d’e-mails sur les rendez-vous disponibles.
prefs-unsubscribed = C’est fait : vous ne recevrez plus d’e-mails sur les rendez-vous disponibles.
prefs-unsubscribe-button = Ne plus recevoir ces e-mails
prefs-email-legend = E-mails sur les rendez-vous disponibles
prefs-inapp-legend = Notifications dans l’application sur les rendez-vous disponibles
prefs-sms-legend = SMS sur les rendez-vous disponibles
prefs-sms-on = Activés : j’accepte de recevoir des SMS
prefs-sms-off = Désactivés
prefs-on = Activées
prefs-off = Désactivées
prefs-save = Enregistrer
prefs-footer = Ces réglages s’appliquent aux messages sur les rendez-vous qui se libèrent.

prefs-error-expired = Ce lien a expiré.
prefs-error-invalid = Ce lien n’est pas valide.
prefs-error-not-found = Nous n’avons pas trouvé vos préférences.
prefs-error-invalid-form = Veuillez choisir « Activées » ou « Désactivées » pour chaque réglage.
