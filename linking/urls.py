from django.urls import path

from linking import views

urlpatterns = [
    # Django's usual address for it; every page's header posts here (templates/portal/_language_switch.html).
    path("i18n/setlang/", views.language_set, name="language_set"),
    path("student/", views.student_home, name="student_home"),
    path("student/codes/new/", views.pairing_code_new, name="pairing_code_new"),
    path("student/codes/<uuid:pk>/", views.pairing_code_detail, name="pairing_code_detail"),
    path("student/codes/<uuid:pk>/status/", views.pairing_code_status, name="pairing_code_status"),
    path("student/codes/<uuid:pk>/card/", views.pairing_code_card, name="pairing_code_card"),
    path("student/codes/<uuid:pk>/email/", views.pairing_code_email_view, name="pairing_code_email"),
    path("family/", views.parent_home, name="parent_home"),
    path("family/add/", views.add_child, name="add_child"),
    path("family/requests/", views.parent_requests, name="parent_requests"),
    path("family/links/<uuid:pk>/remove/", views.link_remove, name="link_remove"),
]
