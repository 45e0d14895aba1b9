"""The audit log in the admin: readable by staff with the view permission, never editable."""

from django.contrib import admin

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["id", "created_at", "action", "outcome", "actor_label", "actor_id"]
    list_filter = ["action", "outcome", "actor_label"]
    date_hierarchy = "created_at"
    ordering = ["-id"]
    readonly_fields = [field.name for field in AuditEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
