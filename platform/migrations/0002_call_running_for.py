from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('lotse', '0001_initial')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Call',
            name='running_for',
            field=fields.IntField(null=True, unique=True),
        ),
    ]
